import daglake
NAME = 'café'
