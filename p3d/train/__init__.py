"""Training: the shared loop (:mod:`p3d.train.trainer`) and the ``p3d train`` commands."""
