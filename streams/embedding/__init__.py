"""The embedding model: sentence-transformers loaded once and shared by the
worker's embed stage and the API's queries (`model.py`), the batched GPU path
(`direct_path.py`) and the token counts the chunker sizes chunks by
(`tokens.py`). It may import only core; the rest of streams, ops and the
composition root (which hands the model to the API) import it."""
