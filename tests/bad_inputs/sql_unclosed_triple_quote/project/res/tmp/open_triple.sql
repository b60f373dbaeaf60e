SELECT """multi
line AS a
