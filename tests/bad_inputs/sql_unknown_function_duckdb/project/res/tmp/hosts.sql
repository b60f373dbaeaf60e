SELECT
  NET.HOST('https://example.com/x') AS host
