import daglake


@daglake.task("staging.nothing")
def nothing():
    return None
