import daglake


@daglake.task
def unnamed(ctx):
    return None
