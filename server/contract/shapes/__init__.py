"""What the server sends, by area; `base` holds what every shape shares."""
