SELECT *
FROM tmp.nowhere
