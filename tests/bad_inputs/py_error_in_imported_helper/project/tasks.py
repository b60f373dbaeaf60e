import daglake
from helpers import TOKEN


@daglake.task("staging.tokens")
def tokens(ctx):
    return ctx.sql(f"SELECT '{TOKEN}' AS token")
