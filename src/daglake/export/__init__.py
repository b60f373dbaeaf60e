"""Hand a project over to another orchestrator: files written from the project's graph."""
