"""Training data for GLNet: DeepGlobe, Inria Aerial, a user's own GeoTIFFs, synthetic scenes.

Every dataset yields scenes as :class:`glnet_geo.datasets.sample.SceneSample`:
the scene image and label at full resolution, from which the training code
cuts the global view and the local patches.

``splits/{train,crossvali,test}.txt`` are the image ids of the GLNet paper's
DeepGlobe split (454 / 207 / 142 ids), copied from the split lists published
with the official GLNet implementation (VITA-Group/GLNet, MIT licence,
Copyright (c) 2019 VITA-Group); see ``splits/README.md``.
"""
