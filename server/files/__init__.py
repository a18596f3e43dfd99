"""Attachments: uploaded once, checked by their bytes, stored in MongoDB, sent as blocks.

`kinds` sniffs and names, `processing` decodes (Pillow, pypdf: CPU work, run off
the loop), `receiving` reads an upload in chunks under its limit, `store` keeps
the bytes in GridFS, `blocks` turns stored references into the model's blocks.
"""
