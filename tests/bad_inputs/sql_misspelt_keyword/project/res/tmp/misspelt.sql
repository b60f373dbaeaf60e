-- a typo
SELEC variant_id FROM tmp.variants
