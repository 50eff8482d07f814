"""Sphinx directive ``sdsnn-equations``: the model's equations, generated from the objects in force.

The page is not retyped from the source: the directive builds a small :class:`SpikingNetwork` from
the default configuration (one hidden layer of 2 neurons; sizes do not change the equations), asks
its Brian2 ``NeuronGroup`` and ``Synapses`` objects for their ``Equations``, threshold, reset,
refractoriness, ``on_pre`` code and namespace, and renders them: the equations as Brian2 prints them,
as LaTeX (the expressions parsed by Brian2's sympy bridge), and a table of every variable with its kind,
unit, type and flags. Options::

    .. sdsnn-equations:: neurons      (the hidden-layer NeuronGroup)
    .. sdsnn-equations:: output       (the output NeuronGroup)
    .. sdsnn-equations:: synapses     (the input_to_hidden_1 Synapses)

and ``.. sdsnn-models::`` renders every registered neuron and synapse model the same way.
"""

from __future__ import annotations

import functools

from docutils import nodes
from docutils.parsers.rst import directives
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

__all__ = ["EquationsDirective", "ModelsDirective", "setup"]


@functools.lru_cache(maxsize=None)
def _network(neuron_model: str = "lif", synapse_model: str = "voltage_jump"):
    """A tiny network of the default configuration with the given models (built once per Sphinx
    process and pair of models)."""
    import brian2
    import numpy as np

    from sdsnn_bio.config import ExperimentConfig
    from sdsnn_bio.model import SpikingNetwork, configure_brian2, initial_structure

    configure_brian2("numpy")
    brian2.BrianLogger.suppress_name("unused_brian_object")
    network = {"hidden_sizes": [2], "neuron_model": neuron_model, "synapse_model": synapse_model}
    config = ExperimentConfig.from_dict({"network": network}, source="docs")
    params = config.network_parameters()
    structure = initial_structure(params, np.random.default_rng(0))
    return SpikingNetwork(structure, params)


def _unit(single) -> str:
    from brian2.units.fundamentalunits import DIMENSIONLESS, get_unit

    if single.var_type != "float":
        return "–"
    if single.dim is DIMENSIONLESS:
        return "1 (dimensionless)"
    return repr(get_unit(single.dim))


def _equations(group):
    """The equations the user gave (a ``NeuronGroup`` adds ``lastspike``/``not_refractory`` itself)."""
    return getattr(group, "user_equations", None) or group.equations


def _type_or_unit(single) -> str:
    from brian2.units.fundamentalunits import DIMENSIONLESS

    if single.var_type in ("boolean", "integer"):
        return single.var_type
    return "1" if single.dim is DIMENSIONLESS else repr(single.unit)


def _equation_lines(group) -> str:
    """The equations as Brian2 writes them, keeping the variable type (``str()`` drops it)."""
    lines = []
    for single in _equations(group).ordered:
        flags = f" ({', '.join(single.flags)})" if single.flags else ""
        if single.type == "differential equation":
            lines.append(f"d{single.varname}/dt = {single.expr} : {_type_or_unit(single)}{flags}")
        elif single.type == "subexpression":
            lines.append(f"{single.varname} = {single.expr} : {_type_or_unit(single)}{flags}")
        else:
            lines.append(f"{single.varname} : {_type_or_unit(single)}{flags}")
    return "\n".join(lines)


def _latex(group) -> list[str]:
    """LaTeX of the differential equations and subexpressions (sympy, as Brian2 parses them)."""
    import sympy
    from brian2.parsing.sympytools import str_to_sympy

    out = []
    for single in _equations(group).ordered:
        if single.expr is None:
            continue
        name = sympy.latex(sympy.Symbol(single.varname))
        rhs = sympy.latex(str_to_sympy(str(single.expr)))
        if single.type == "differential equation":
            out.append(rf"\frac{{\mathrm{{d}}{name}}}{{\mathrm{{d}}t}} = {rhs}")
        else:
            out.append(f"{name} = {rhs}")
    return out


def _table(group) -> list[str]:
    rows = [("variable", "kind", "unit", "type", "flags")]
    for single in _equations(group).ordered:
        rows.append((f"``{single.varname}``", single.type, _unit(single), single.var_type,
                     ", ".join(single.flags) or "–"))
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in rows:
        out.append(f"   * - {row[0]}")
        out.extend(f"     - {cell}" for cell in row[1:])
    return out


def _literal(text: str, language: str = "text") -> list[str]:
    return [f".. code-block:: {language}", ""] + [f"   {line}" for line in text.splitlines()] + [""]


def _namespace(group) -> list[str]:
    rows = []
    for name, value in sorted(group.namespace.items()):
        rows += [f"   * - ``{name}``", f"     - ``{value!r}``"]
    if not rows:
        return ["No external constants (empty ``namespace``).", ""]
    return [".. list-table::", "   :header-rows: 1", "", "   * - constant", "     - value", *rows, ""]


class EquationsDirective(SphinxDirective):
    """Render the equations of one Brian2 object of the default network (see module docstring)."""

    required_arguments = 1
    has_content = False
    option_spec = {"name": directives.unchanged}

    def run(self) -> list[nodes.Node]:
        which = self.arguments[0]
        objects = {"neurons": "hidden_1", "output": "output", "synapses": "input_to_hidden_1"}
        if which not in objects:
            raise self.error(f"sdsnn-equations: expected one of {sorted(objects)}, got {which!r}")
        group = _network()[objects[which]]
        return _parse(self, _render(group, which == "synapses"), f"<sdsnn-equations {which}>")


def _render(group, synapses: bool) -> list[str]:
    """reStructuredText of one Brian2 object's equations, code and constants."""
    rst: list[str] = [f"Brian2 object ``{group.name}`` (``{type(group).__name__}``), "
                      "as built by :class:`sdsnn_bio.model.SpikingNetwork`:", ""]
    rst += _literal(_equation_lines(group))
    for line in _latex(group):
        rst += [".. math::", "", f"   {line}", ""]
    rst += _table(group) + [""]
    if synapses:
        pre = group.pre.code
        rst += ["On a presynaptic spike (``on_pre``):", ""] + _literal(pre)
        return rst
    threshold = group.events["spike"]
    reset = group.event_codes.get("spike", "")
    refractory = group._refractory
    rst += ["Threshold, reset and refractoriness:", ""]
    rst += _literal(f"threshold = {threshold!r}\nreset     = {reset!r}\nrefractory = {refractory!r}")
    rst += ["Constants in the group's ``namespace`` (default configuration):", ""]
    rst += _namespace(group)
    rst += ["Brian2 adds ``lastspike`` and ``not_refractory`` to implement refractoriness "
            "(the ``unless refractory`` flag).", ""]
    for operation in group.contained_objects:
        if operation.name == f"{group.name}_sample_reset":
            rst += [f"At the start of every sample window (``run_regularly`` "
                    f"``{operation.name}``):", ""]
            rst += _literal(operation.abstract_code)
    return rst


def _parse(directive: SphinxDirective, rst: list[str], source: str) -> list[nodes.Node]:
    container = nodes.container()
    directive.state.nested_parse(StringList(rst, source=source), directive.content_offset, container)
    return container.children


def _summary(cls) -> str:
    """First paragraph of a model class's docstring."""
    doc = (cls.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(line.strip() for line in doc.splitlines())


class ModelsDirective(SphinxDirective):
    """``.. sdsnn-models::`` — every registered neuron model (with voltage-jump synapses) and every
    registered synapse model (into LIF neurons), each as Brian2 builds it: a model added to the
    registries appears here without editing the page."""

    required_arguments = 0
    has_content = False

    def run(self) -> list[nodes.Node]:
        from sdsnn_bio.model import NEURON_MODELS, SYNAPSE_MODELS

        rst: list[str] = []
        for name, cls in NEURON_MODELS.items():
            title = f"Neuron model ``{name!r}``"
            rst += [".. rubric:: " + title, "", f"{_summary(cls)} (:class:`{cls.__module__}.{cls.__name__}`, "
                    f"``network.neuron_model = \"{name}\"``)", ""]
            rst += _render(_network(name, "voltage_jump")["hidden_1"], synapses=False)
        for name, cls in SYNAPSE_MODELS.items():
            title = f"Synapse model ``{name!r}``"
            network = _network("lif", name)
            rst += [".. rubric:: " + title, "", f"{_summary(cls)} (:class:`{cls.__module__}.{cls.__name__}`, "
                    f"``network.synapse_model = \"{name}\"``). The synapses:", ""]
            rst += _render(network["input_to_hidden_1"], synapses=True)
            rst += ["The postsynaptic (LIF) neurons with this synapse model:", ""]
            rst += _literal(_equation_lines(network["hidden_1"]))
        return _parse(self, rst, "<sdsnn-models>")


def setup(app):
    app.add_directive("sdsnn-equations", EquationsDirective)
    app.add_directive("sdsnn-models", ModelsDirective)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
