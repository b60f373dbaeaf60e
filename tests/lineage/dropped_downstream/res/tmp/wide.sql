SELECT id, secret FROM `raw.t`
