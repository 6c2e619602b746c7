"""One APIRouter per panel of the page: map, decode (and neighbours, real images), interpolate, attributes
(and axes), upload."""
