"""One APIRouter per concept: catalog, search, images, scenes, export, pages."""
