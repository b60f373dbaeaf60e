import daglake


@daglake.task("staging.columns")
def columns(ctx):
    return {"id": [1, 2], "name": ["a", "b"]}
