"""A stand-in for Blender's UILayout that records what a panel draws, so panels' ``draw`` can run in
tests (the bpy module has no regions to draw into). It checks what it is given against RNA: a property
drawn must exist on its data, an operator must be registered and only its own properties may be set."""
from __future__ import annotations

import bpy


class OperatorCall:
    def __init__(self, idname: str, log: list):
        module, name = idname.split(".")
        self.__dict__["_idname"] = idname
        self.__dict__["_props"] = {p.identifier for p in getattr(getattr(bpy.ops, module), name).get_rna_type()
                                   .properties}
        self.__dict__["values"] = {}
        log.append(("operator", idname, self))

    def __setattr__(self, name, value):
        if name not in self._props:
            raise AttributeError(f"operator {self._idname} has no property {name!r}")
        self.values[name] = value

    def __getattr__(self, name):
        return self.values.get(name)


class Recorder:
    """Records prop/label/operator/template_list calls of a panel, nested layouts included."""

    def __init__(self, log: list | None = None):
        self.__dict__["log"] = [] if log is None else log
        self.__dict__["attrs"] = {}

    def __setattr__(self, name, value):  # alert, enabled, active, use_property_split, scale_y...
        self.attrs[name] = value

    def __getattr__(self, name):
        return self.attrs.get(name)

    def _child(self, *args, **kwargs):
        return Recorder(self.log)

    row = column = box = split = grid_flow = column_flow = _child

    def prop(self, data, prop, **kwargs):
        if prop not in data.bl_rna.properties:
            raise AttributeError(f"{data.bl_rna.identifier} has no property {prop!r}")
        getattr(data, prop)  # dynamic enums and getters run as when Blender draws
        self.log.append(("prop", data, prop, kwargs))

    def prop_search(self, data, prop, search_data, search_prop, **kwargs):
        if prop not in data.bl_rna.properties or search_prop not in search_data.bl_rna.properties:
            raise AttributeError(f"prop_search({prop!r}, {search_prop!r}): no such property")
        self.log.append(("prop", data, prop, kwargs))

    def label(self, text="", **kwargs):
        self.log.append(("label", text, kwargs))

    def operator(self, idname, **kwargs):
        return OperatorCall(idname, self.log)

    def template_list(self, list_type, list_id, data, prop, active_data, active_prop, **kwargs):
        if list_type not in dir(bpy.types):
            raise AttributeError(f"no UIList {list_type}")
        if prop not in data.bl_rna.properties or active_prop not in active_data.bl_rna.properties:
            raise AttributeError(f"template_list: {prop!r} or {active_prop!r} missing")
        self.log.append(("template_list", list_type, prop))

    def separator(self, **kwargs):
        pass

    # -- queries for tests ----------------------------------------------------------------------------
    def props(self, data=None) -> list[str]:
        return [e[2] for e in self.log if e[0] == "prop" and (data is None or e[1] == data)]

    def labels(self) -> list[str]:
        return [e[1] for e in self.log if e[0] == "label"]

    def operators(self) -> list[str]:
        return [e[1] for e in self.log if e[0] == "operator"]


def draw(panel_class, context=None) -> Recorder:
    """Run a panel's draw with a recorder as its layout (the panel's poll is honoured)."""
    context = context or bpy.context
    layout = Recorder()
    if hasattr(panel_class, "poll") and not panel_class.poll(context):
        layout.log.append(("hidden", panel_class.__name__))
        return layout

    class Stand:
        pass

    stand = Stand()
    stand.layout = layout
    for name in dir(panel_class):
        if not name.startswith("__") and name not in ("draw", "layout", "bl_rna"):
            try:
                setattr(stand, name, getattr(panel_class, name))
            except AttributeError:
                pass
    panel_class.draw(stand, context)
    return layout
