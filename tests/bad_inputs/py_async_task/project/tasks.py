import daglake


@daglake.task("staging.later")
async def later(ctx):
    return ctx.sql("SELECT 1 AS x")
