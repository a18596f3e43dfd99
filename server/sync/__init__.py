"""The change feed: what changed on a user's other devices, pulled (`/api/sync`) and pushed.

`cursor.py` the cursor (a moment with an overlap, and what the holder has);
`catchup.py` what a sync answers; `changes.py` a pushed change; `inbox.py` one
socket's pending pushes; `feed.py` the fan-out to sockets, here and through Redis.
"""
