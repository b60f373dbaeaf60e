SELECT * FROM `raw.t`
