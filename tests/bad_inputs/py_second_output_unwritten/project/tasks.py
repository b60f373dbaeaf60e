import daglake


@daglake.task(["staging.left", "staging.right"])
def pair(ctx):
    return ctx.sql("SELECT 1 AS x")
