"""What differs between two raster layers' grids, in words (the Detect tab's note)."""


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def grid_differences(t1, t2) -> list[str]:
    """Each difference between t1's and t2's grids (QgsRasterLayer-like), e.g. "pixel size 0.5×0.5 vs 0.3×0.3
    map units"; empty when they share one grid."""
    differences = []
    if t1.crs() != t2.crs():
        differences.append(f"CRS {t2.crs().authid() or 'custom'} vs {t1.crs().authid() or 'custom'}")
    size1 = (t1.rasterUnitsPerPixelX(), t1.rasterUnitsPerPixelY())
    size2 = (t2.rasterUnitsPerPixelX(), t2.rasterUnitsPerPixelY())
    if any(abs(a - b) > 1e-9 * max(abs(a), 1e-12) for a, b in zip(size1, size2, strict=True)):
        differences.append(
            f"pixel size {_fmt(size2[0])}×{_fmt(size2[1])} vs {_fmt(size1[0])}×{_fmt(size1[1])} map units"
        )
    e1, e2 = t1.extent(), t2.extent()
    origin1, origin2 = (e1.xMinimum(), e1.yMaximum()), (e2.xMinimum(), e2.yMaximum())
    tolerance = 1e-6 * max(size1[0], size1[1], 1e-12)
    if any(abs(a - b) > tolerance for a, b in zip(origin1, origin2, strict=True)):
        differences.append(
            f"origin ({_fmt(origin2[0])}, {_fmt(origin2[1])}) vs ({_fmt(origin1[0])}, {_fmt(origin1[1])})"
        )
    if (t1.width(), t1.height()) != (t2.width(), t2.height()):
        differences.append(f"size {t2.width()}×{t2.height()} vs {t1.width()}×{t1.height()} px")
    return differences


def grid_note(t1, t2) -> str | None:
    """The note for a pair on different grids (t2's value first, then t1's), or None when they share one."""
    differences = grid_differences(t1, t2)
    if not differences:
        return None
    return (
        f"t2 ({t2.name()}) is not on t1's ({t1.name()}) grid: {'; '.join(differences)} (t2 vs t1). It will be "
        "resampled onto t1's grid (bilinear) and only their overlap is analysed."
    )


def _extent_text(extent) -> str:
    return (
        f"x {_fmt(extent.xMinimum())} to {_fmt(extent.xMaximum())}, "
        f"y {_fmt(extent.yMinimum())} to {_fmt(extent.yMaximum())}"
    )


def _in_crs(extent, source_crs, target_crs):
    from qgis.core import QgsCoordinateTransform, QgsProject

    if source_crs == target_crs:
        return extent
    return QgsCoordinateTransform(source_crs, target_crs, QgsProject.instance()).transformBoundingBox(extent)


def overlap_note(image, buildings) -> str | None:
    """Why no building can be edited when the building layer misses the image: where each one is."""
    try:
        footprint = _in_crs(buildings.extent(), buildings.crs(), image.crs())
    except Exception:  # noqa: BLE001 (an impossible transform is itself a reason)
        footprint = None
    if footprint is not None and footprint.intersects(image.extent()):
        return None
    return (
        f"The buildings '{buildings.name()}' do not overlap the image '{image.name()}': the image covers "
        f"{_extent_text(image.extent())} ({image.crs().authid() or 'custom CRS'}), the buildings "
        f"{_extent_text(buildings.extent())} ({buildings.crs().authid() or 'custom CRS'}). Choose the building "
        "layer of this image (or fix the CRS of the wrong layer)."
    )


def view_note(buildings, view_extent, view_crs) -> str | None:
    """When the buildings overlap the image but none lies in the map view."""
    try:
        view = _in_crs(view_extent, view_crs, buildings.crs())
    except Exception:  # noqa: BLE001
        return None
    if view.intersects(buildings.extent()):
        return None
    return (
        f"No building of '{buildings.name()}' lies in the current map view: the buildings cover "
        f"{_extent_text(buildings.extent())} ({buildings.crs().authid() or 'custom CRS'}). Pan or zoom to them."
    )
