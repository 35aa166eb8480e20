"""Whether Python threads may run beside Blender's own thread in a process that has bpy.

Not under Python 3.11 (Blender 5.0). Blender lets other threads run while an operator runs (a thread beside
``bpy.ops.mesh.primitive_uv_sphere_add`` keeps counting, on 5.0 and 5.3); an operator called inside
``bpy.context.temp_override`` (the generators' and the physics drop's) then reads the override's dict
(BPY_context_member_get), taking Python's lock only when no thread state is current (``!PyC_IsInterpreterActive()``).
3.11 keeps the current thread state in one global, set while *another* thread holds the lock: the dict is then read
without the lock, and that thread releasing it leaves no state at all (gdb: ``_PyErr_Fetch(tstate=0x0)`` under
``PyDict_GetItemString``). 3.12+ keep it per thread, so Blender takes the lock as it should. Measured: bpy 5.0.1
segfaulted in 20 runs of 20 with a thread appending to a file beside primitive adds in a temp_override; bpy 5.3
(Python 3.13) in none.

In a process that has loaded bpy under 3.11, synthfarm's dataset writes (core/dataset/background.py, the encoders
of core/dataset/durable.py) therefore run on the caller's thread, and the farm's Blender child makes a job durable
before it renders the next.
"""
import sys


def threads_beside_bpy() -> bool:
    """False in a process that has loaded bpy under Python 3.11; True anywhere else (the farm's own processes)."""
    return sys.version_info >= (3, 12) or "bpy" not in sys.modules
