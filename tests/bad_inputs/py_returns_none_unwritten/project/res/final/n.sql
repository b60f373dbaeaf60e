SELECT COUNT(*) AS n FROM staging.forgot
