-- Suppliers we buy from; lead time is order-to-delivery in days.
CREATE OR REPLACE TABLE `raw.suppliers` (
  id INT64,
  name STRING,
  country STRING,
  lead_time_days INT64,
  is_active BOOL
) AS
SELECT 1, 'Alpina Trading GmbH', 'DE', 14, TRUE
UNION ALL SELECT 2, 'Nordic Outfitters AB', 'SE', 21, TRUE
UNION ALL SELECT 3, 'Sierra Gear Inc.', 'US', 35, TRUE
UNION ALL SELECT 4, 'Dolomiti Calzature S.r.l.', 'IT', 10, TRUE
UNION ALL SELECT 5, 'Pacific Textiles Ltd', 'VN', 60, FALSE
UNION ALL SELECT 6, 'Editions Montagne', 'FR', 7, TRUE
UNION ALL SELECT 7, 'Wool & Co', 'NZ', 45, TRUE;
