SELECT variant_id
FROM tmp.variants
WHERE
