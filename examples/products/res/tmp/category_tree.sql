-- Every category with its department and full path ("Outdoor > Footwear > Hiking boots").
WITH RECURSIVE tree AS (
  SELECT
    id AS category_id,
    name AS category_name,
    id AS department_id,
    name AS department_name,
    name AS path,
    0 AS depth
  FROM `raw.categories`
  WHERE parent_id IS NULL

  UNION ALL

  SELECT
    c.id,
    c.name,
    tree.department_id,
    tree.department_name,
    CONCAT(tree.path, ' > ', c.name),
    tree.depth + 1
  FROM `raw.categories` AS c
  JOIN tree ON c.parent_id = tree.category_id
)

SELECT category_id, category_name, department_id, department_name, path, depth
FROM tree
