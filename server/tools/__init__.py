"""Tools the model may call during a turn: typed async functions, their schemas from type hints."""
