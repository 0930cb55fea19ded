"""Training GLNet: the stages of Algorithm 1 on Lightning, and scoring on labelled scenes.

- :mod:`~glnet_geo.training.data`: datasets, their classes and loaders;
- :mod:`~glnet_geo.training.module`: the Lightning module of one stage;
- :mod:`~glnet_geo.training.trainer`: running the stages, ending in one checkpoint;
- :mod:`~glnet_geo.training.evaluation`: predicting whole scenes and scoring them.
"""
