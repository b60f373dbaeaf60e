SELECT variant_id FROM tmp.variants
WHERE DATE '2024-01-01' = @day
