"""GLNet: encoders, FPN decoders, feature-map sharing, losses, official import."""

from glnet_geo.models.glnet import GLNet, GLNetMode, GLNetOutput, ScenePart
from glnet_geo.models.official import from_official

__all__ = ["GLNet", "GLNetMode", "GLNetOutput", "ScenePart", "from_official"]
