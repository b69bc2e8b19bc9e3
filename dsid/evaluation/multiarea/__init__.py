"""How well a multi-area model recovered the communication between areas: the metrics (``metrics``:
effectome, edge AUROC, delays, message R2, per-area rates), their figures (``plots``) and the entry
points that score or draw a trained model against a file's truth (``communication``)."""
