SELECT variant_id,, product_id
FROM tmp.inventory_items
