"""A stand-in for Blender's UILayout that records what a panel draws, so panels' ``draw`` can run in
tests (the bpy module has no regions to draw into). It checks what it is given against RNA: a property
drawn must exist on its data, an operator must be registered and only its own properties may be set, an
icon must be one of Blender's. It keeps the nesting (rows, columns, boxes, splits), so a test can ask on
which line of the panel something is drawn."""
from __future__ import annotations

import bpy

ICONS = set(bpy.types.UILayout.bl_rna.functions["prop"].parameters["icon"].enum_items.keys())
STACKING = ("root", "column", "box", "column_flow", "grid_flow")  # their children stand on lines of their own


def check_icon(icon) -> None:
    if icon not in (None, "") and icon not in ICONS:
        raise ValueError(f"Blender has no icon {icon!r}")


class OperatorCall:
    def __init__(self, idname: str, log: list, where, icon=None, text=None):
        module, name = idname.split(".")
        self.__dict__["_idname"] = idname
        self.__dict__["icon"], self.__dict__["text"] = icon, text
        self.__dict__["_props"] = {p.identifier for p in getattr(getattr(bpy.ops, module), name).get_rna_type()
                                   .properties}
        self.__dict__["values"] = {}
        log.append(("operator", idname, self, where))

    def __setattr__(self, name, value):
        if name not in self._props:
            raise AttributeError(f"operator {self._idname} has no property {name!r}")
        self.values[name] = value

    def __getattr__(self, name):
        return self.values.get(name)


class Recorder:
    """Records prop/label/operator/template_list/progress calls of a panel, nested layouts included. Each log
    entry ends with the Recorder it was drawn into."""

    def __init__(self, log: list | None = None, kind: str = "root", parent: "Recorder | None" = None):
        self.__dict__["log"] = [] if log is None else log
        self.__dict__["attrs"] = {}
        self.__dict__["kind"] = kind
        self.__dict__["parent"] = parent

    def __setattr__(self, name, value):  # alert, enabled, active, use_property_split, scale_y...
        self.attrs[name] = value

    def __getattr__(self, name):
        return self.attrs.get(name)

    def _child(kind):
        def make(self, *args, **kwargs):
            return Recorder(self.log, kind, self)
        return make

    row = _child("row")
    column = _child("column")
    box = _child("box")
    split = _child("split")
    grid_flow = _child("grid_flow")
    column_flow = _child("column_flow")

    def prop(self, data, prop, **kwargs):
        if prop not in data.bl_rna.properties:
            raise AttributeError(f"{data.bl_rna.identifier} has no property {prop!r}")
        check_icon(kwargs.get("icon"))
        getattr(data, prop)  # dynamic enums and getters run as when Blender draws
        self.log.append(("prop", data, prop, kwargs, self))

    def prop_search(self, data, prop, search_data, search_prop, **kwargs):
        if prop not in data.bl_rna.properties or search_prop not in search_data.bl_rna.properties:
            raise AttributeError(f"prop_search({prop!r}, {search_prop!r}): no such property")
        self.log.append(("prop", data, prop, kwargs, self))

    def label(self, text="", **kwargs):
        check_icon(kwargs.get("icon"))
        self.log.append(("label", text, kwargs, self))

    def operator(self, idname, **kwargs):
        check_icon(kwargs.get("icon"))
        return OperatorCall(idname, self.log, self, kwargs.get("icon"), kwargs.get("text"))

    def progress(self, factor=0.0, type="BAR", text="", **kwargs):
        self.log.append(("progress", factor, text, self))

    def template_list(self, list_type, list_id, data, prop, active_data, active_prop, **kwargs):
        if list_type not in dir(bpy.types):
            raise AttributeError(f"no UIList {list_type}")
        if prop not in data.bl_rna.properties or active_prop not in active_data.bl_rna.properties:
            raise AttributeError(f"template_list: {prop!r} or {active_prop!r} missing")
        self.log.append(("template_list", list_type, prop, self))

    def separator(self, **kwargs):
        pass

    # -- queries for tests ----------------------------------------------------------------------------
    def props(self, data=None) -> list[str]:
        return [e[2] for e in self.log if e[0] == "prop" and (data is None or e[1] == data)]

    def labels(self) -> list[str]:
        return [e[1] for e in self.log if e[0] == "label"]

    def texts(self) -> list[str]:
        """Every text a user reads: labels and the texts of buttons."""
        return [e[1] if e[0] == "label" else e[2].text for e in self.log
                if e[0] == "label" or (e[0] == "operator" and e[2].text)]

    def operators(self) -> list[str]:
        return [e[1] for e in self.log if e[0] == "operator"]

    def icons(self) -> list[str]:
        return [e[2].icon if e[0] == "operator" else (e[3] if e[0] == "prop" else e[2]).get("icon")
                for e in self.log if e[0] in ("prop", "label", "operator")]

    def line_key(self, index: int):
        """Which line of the panel log entry ``index`` is on: that of its outermost row (whatever a row holds,
        nested columns included, sits side by side on its line); an item stacked in columns only is a line."""
        node, outermost_row = self.log[index][-1], None
        while node is not None:
            if node.kind not in STACKING:
                outermost_row = node
            node = node.parent
        return ("own", index) if outermost_row is None else ("row", id(outermost_row))

    def lines(self, entries=None) -> list[list[str]]:
        """The lines of the panel (or of the given entry indices), top to bottom, each as the kinds drawn on it."""
        out: dict = {}
        for i in range(len(self.log)) if entries is None else entries:
            out.setdefault(self.line_key(i), []).append(self.log[i][0])
        return list(out.values())


def draw(panel_class, context=None) -> Recorder:
    """Run a panel's draw with a recorder as its layout (the panel's poll is honoured)."""
    context = context or bpy.context
    layout = Recorder()
    if hasattr(panel_class, "poll") and not panel_class.poll(context):
        layout.log.append(("hidden", panel_class.__name__, layout))
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


def draw_list_item(list_class, data, item, index: int, context=None) -> Recorder:
    """Run a UIList's draw_item for one item with a recorder as its layout."""
    layout = Recorder()
    list_class.draw_item(None, context or bpy.context, layout, data, item, "", data, "", index)
    return layout
