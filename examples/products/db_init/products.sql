-- Product master data, one row per product (variants live in raw.product_variants).
CREATE OR REPLACE TABLE `raw.products` (
  id INT64,
  sku STRING,
  name STRING,
  brand STRING,
  category_id INT64,
  supplier_id INT64,
  launched_on DATE,
  is_discontinued BOOL
) AS
SELECT 101, 'HB-ALP-01', 'Alpine Trek GTX', 'Alpina', 5, 4, DATE '2021-03-01', FALSE
UNION ALL SELECT 102, 'HB-ALP-02', 'Summit Pro Leather', 'Alpina', 5, 4, DATE '2019-09-15', FALSE
UNION ALL SELECT 103, 'TR-VEL-01', 'Velox Trail 3', 'Velox', 6, 3, DATE '2023-02-01', FALSE
UNION ALL SELECT 104, 'TR-VEL-02', 'Velox Ultra', 'Velox', 6, 3, DATE '2022-05-20', TRUE
UNION ALL SELECT 105, 'JK-NRD-01', 'Fjord Shell Jacket', 'Nordkapp', 7, 2, DATE '2022-10-01', FALSE
UNION ALL SELECT 106, 'JK-NRD-02', 'Polar Down Parka', 'Nordkapp', 7, 5, DATE '2020-11-11', FALSE
UNION ALL SELECT 107, 'BP-SRR-01', 'Ridge 35 Backpack', 'Sierra', 8, 3, DATE '2021-04-12', FALSE
UNION ALL SELECT 108, 'BP-SRR-02', 'Expedition 70', 'Sierra', 8, 3, DATE '2018-06-30', FALSE
UNION ALL SELECT 109, 'TN-ALP-01', 'Bivouac 2P Tent', 'Alpina', 9, 1, DATE '2022-03-15', FALSE
UNION ALL SELECT 110, 'TN-NRD-01', 'Storm 3P Tent', 'Nordkapp', 9, 2, DATE '2023-04-01', FALSE
UNION ALL SELECT 111, 'BK-EDM-01', 'Tour du Mont Blanc Guide', 'Editions Montagne', 11, 6, DATE '2020-05-05', FALSE
UNION ALL SELECT 112, 'BK-EDM-02', 'GR20 Corsica Guide', 'Editions Montagne', 11, 6, DATE '2024-01-10', FALSE
UNION ALL SELECT 113, 'SK-WOL-01', 'Merino Hiking Socks', 'Wool & Co', 12, 7, DATE '2025-03-01', FALSE;
