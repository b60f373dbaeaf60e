SELECT CAST(variant_id AS) AS v FROM tmp.variants
