"""A NIR graph made flat and checked before anything runs: subgraphs inlined, every edge's
nodes present, one Input and one Output, every cycle through a neuron; then an execution order.

Node ``n`` of subgraph ``s`` becomes ``s.n``. An edge may name a subgraph (its one Input or
Output) or ``s.name`` (that Input or Output of ``s``). The subgraph's Input and Output nodes
stay in the flat graph as identities (``PASS``).
"""

from __future__ import annotations

import warnings
from typing import Any

from ._modules import NIRWarning
from ._nodes import is_neuron, supported

PASS = "pass"  # a subgraph's Input or Output node: its input, unchanged


def _sorted_names(names) -> str:
    names = sorted(names)
    shown = ", ".join(repr(n) for n in names[:20])
    return shown + (f" and {len(names) - 20} more" if len(names) > 20 else "")


def flatten(graph: Any, prefix: str = "") -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """``(nodes, edges)`` of ``graph`` with its subgraphs inlined, every edge checked."""
    import nir

    where = f" in subgraph {prefix[:-1]!r}" if prefix else ""
    if not isinstance(graph.nodes, dict):
        raise ValueError(f"graph nodes{where} must be a dict name -> node, got {type(graph.nodes)}")
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    for name, node in graph.nodes.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"node names must be non-empty strings, got {name!r}{where}")
        if isinstance(node, nir.NIRGraph):
            inner_nodes, inner_edges = flatten(node, f"{prefix}{name}.")
            # the subgraph's own Input and Output (deeper ones are PASS already)
            inner_nodes = {
                k: PASS if isinstance(v, nir.Input | nir.Output) else v
                for k, v in inner_nodes.items()
            }
            clash = set(inner_nodes) & set(nodes)
            if clash:
                raise ValueError(f"subgraph {prefix + name!r}: node names clash: {sorted(clash)}")
            nodes.update(inner_nodes)
            edges += inner_edges
        else:
            if prefix + name in nodes:
                raise ValueError(f"node {prefix + name!r} is defined twice{where}")
            nodes[prefix + name] = node
    seen: set[tuple[str, str]] = set()
    dotted: dict[str, set[str]] = {}
    for edge in graph.edges:
        try:
            a, b = edge
        except (TypeError, ValueError):
            raise ValueError(f"an edge is a pair of node names, got {edge!r}{where}") from None
        a, b = _text(a), _text(b)
        (src, a_flat), (dst, b_flat) = (
            _endpoint(graph, a, b, prefix, "source"),
            _endpoint(graph, b, a, prefix, "dest"),
        )
        for ref, end, written_flat in ((a, src, a_flat), (b, dst, b_flat)):
            if written_flat:  # a subgraph written flat (see _dotted): a border, not an IO
                nodes[end] = PASS
                dotted.setdefault(ref, set()).add(end[len(prefix) :])
        if (src, dst) in seen:
            raise ValueError(f"edge ({a!r}, {b!r}){where} is listed twice")
        seen.add((src, dst))
        edges.append((src, dst))
    if dotted:
        found = "; ".join(f"{k!r} as {sorted(v)}" for k, v in dotted.items())
        warnings.warn(
            f"edges{where} name nodes that do not exist, read as subgraphs written flat with "
            f"dotted names (as early NIR exports did): {found}",
            NIRWarning,
            stacklevel=3,
        )
    return nodes, edges


def _text(name: Any) -> str:
    return name.decode() if isinstance(name, bytes) else str(name)


def _endpoint(graph: Any, ref: str, other: str, prefix: str, role: str) -> tuple[str, bool]:
    """The flat name that edge end ``ref`` (a ``source`` or ``dest``) refers to, and whether it
    was read as the border of a subgraph written flat."""
    import nir

    io_type = nir.Output if role == "source" else nir.Input
    edge = (ref, other) if role == "source" else (other, ref)
    where = f" in subgraph {prefix[:-1]!r}" if prefix else ""
    node = graph.nodes.get(ref)
    if node is not None and not isinstance(node, nir.NIRGraph):
        return prefix + ref, False
    if node is not None:  # a subgraph named whole: its single Input (as dest) or Output
        ios = [k for k, v in node.nodes.items() if isinstance(v, io_type)]
        if len(ios) != 1:
            raise ValueError(
                f"edge {edge!r}{where}: subgraph {ref!r} has {len(ios)} {io_type.__name__} "
                f"nodes ({ios}); name one as '{ref}.<name>'"
            )
        return f"{prefix}{ref}.{ios[0]}", False
    head, _, tail = ref.partition(".")
    sub = graph.nodes.get(head)
    if isinstance(sub, nir.NIRGraph) and isinstance(sub.nodes.get(tail), io_type):
        return f"{prefix}{head}.{tail}", False
    dotted = _dotted(graph, ref, io_type)
    if dotted is not None:  # flatten warns
        return prefix + dotted, True
    raise ValueError(
        f"edge {edge!r}{where}: its {role} node {ref!r} does not exist; the nodes are "
        f"{_sorted_names(graph.nodes)}"
    )


def _dotted(graph: Any, ref: str, io_type: type) -> str | None:
    """The one ``ref.<name>`` node of type ``io_type`` (Input as dest, Output as source)."""
    found = [
        k for k, v in graph.nodes.items() if k.startswith(ref + ".") and isinstance(v, io_type)
    ]
    return found[0] if len(found) == 1 else None


def check(nodes: dict[str, Any], edges: list[tuple[str, str]]) -> tuple[str, str]:
    """Refuse what no execution order can run; returns the names of the Input and Output."""
    import nir

    for name, node in nodes.items():
        if node is not PASS and not isinstance(node, nir.Input | nir.Output | nir.NIRGraph):
            if not supported(node):
                raise ValueError(
                    f"node {name!r}: NIR {type(node).__name__} is not supported by "
                    "torchspike.nir.load"
                )
    inputs = [k for k, v in nodes.items() if isinstance(v, nir.Input)]
    outputs = [k for k, v in nodes.items() if isinstance(v, nir.Output)]
    if not inputs or not outputs:
        raise ValueError(
            f"the graph has no {'Input' if not inputs else 'Output'} node (graphs from NIR "
            "before 0.2 had none): nothing tells where the data enters or leaves; add "
            "nir.Input / nir.Output nodes and their edges"
        )
    if len(inputs) != 1 or len(outputs) != 1:
        raise ValueError(
            f"torchspike.nir.load runs graphs with one Input and one Output, got inputs "
            f"{inputs} and outputs {outputs}"
        )
    for a, b in edges:
        if b == inputs[0]:
            raise ValueError(f"edge ({a!r}, {b!r}) leads into the Input node")
        if a == outputs[0]:
            raise ValueError(f"edge ({a!r}, {b!r}) leaves the Output node")
    fed = {b for _, b in edges}
    unfed = [k for k in nodes if k not in fed and k != inputs[0]]
    if unfed:
        raise ValueError(f"nodes {unfed} have no incoming edge: nothing drives them")
    return inputs[0], outputs[0]


def schedule(
    nodes: dict[str, Any], edges: list[tuple[str, str]], start: str
) -> tuple[list[str], set[tuple[str, str]]]:
    """Nodes in execution order, and the edges that close cycles (delayed by one step).

    Depth-first walks (successors by name, so the order does not depend on how a file stored
    the nodes): from the Input, then from the first neuron left unreached, until every node is
    reached (a loop that drives itself, e.g. a recurrent layer with a bias, needs no Input). An
    edge back to a node still being walked closes a cycle. Every cycle must pass through a
    neuron: one of stateless layers only is refused."""
    _cycles_pass_through_neurons(nodes, edges)
    successors: dict[str, list[str]] = {k: [] for k in nodes}
    for a, b in edges:
        successors[a].append(b)
    for v in successors.values():
        v.sort()
    walks: list[list[str]] = []
    back: set[tuple[str, str]] = set()
    state: dict[str, str] = {}
    root: str | None = start
    while root is not None:
        walks.append(_walk(root, successors, state, back))
        # what is left is fed only by itself, so it holds a cycle, so a neuron
        root = next((k for k in sorted(nodes) if k not in state and is_neuron(nodes[k])), None)
    # a later walk's nodes may feed an earlier walk's, never the other way round
    return [k for walk in reversed(walks) for k in reversed(walk)], back


def _walk(root: str, successors, state: dict[str, str], back: set) -> list[str]:
    """Post-order of a depth-first walk from ``root`` over nodes not yet in ``state``."""
    order: list[str] = []
    state[root] = "open"
    stack = [(root, iter(successors[root]))]
    while stack:  # iterative: deep chains must not hit Python's recursion limit
        name, it = stack[-1]
        nxt = next(it, None)
        if nxt is None:
            stack.pop()
            state[name] = "done"
            order.append(name)
        elif state.get(nxt) == "open":
            back.add((name, nxt))
        elif nxt not in state:
            state[nxt] = "open"
            stack.append((nxt, iter(successors[nxt])))
    return order


def _cycles_pass_through_neurons(nodes: dict[str, Any], edges: list[tuple[str, str]]) -> None:
    """A cycle of stateless nodes is an algebraic loop with no discrete-time reading."""
    stateless = {k for k, v in nodes.items() if not is_neuron(v)}
    inner = [(a, b) for a, b in edges if a in stateless and b in stateless]
    indegree = dict.fromkeys(stateless, 0)
    for _, b in inner:
        indegree[b] += 1
    ready = [k for k, d in indegree.items() if d == 0]
    while ready:
        k = ready.pop()
        for a, b in inner:
            if a == k:
                indegree[b] -= 1
                if indegree[b] == 0:
                    ready.append(b)
    loop = sorted(k for k, d in indegree.items() if d > 0)
    if loop:
        raise ValueError(
            f"nodes {loop} form a cycle without a neuron: an instantaneous loop that no "
            "step-by-step simulation can run"
        )
