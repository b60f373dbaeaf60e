import daglake


@daglake.task("tmp.py_str", inputs=["raw.products"])
def py_str(ctx):
    return "SELECT COUNT(*) AS n FROM raw.products"
