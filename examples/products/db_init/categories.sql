-- Product categories: a two-level tree (department > category).
CREATE OR REPLACE TABLE `raw.categories` (
  id INT64,
  name STRING,
  parent_id INT64
) AS
SELECT 1, 'Outdoor', NULL
UNION ALL SELECT 2, 'Footwear', 1
UNION ALL SELECT 3, 'Apparel', 1
UNION ALL SELECT 4, 'Equipment', 1
UNION ALL SELECT 5, 'Hiking boots', 2
UNION ALL SELECT 6, 'Trail running shoes', 2
UNION ALL SELECT 7, 'Jackets', 3
UNION ALL SELECT 8, 'Backpacks', 4
UNION ALL SELECT 9, 'Tents', 4
UNION ALL SELECT 10, 'Books', NULL
UNION ALL SELECT 11, 'Guidebooks', 10
UNION ALL SELECT 12, 'Socks', 3;
