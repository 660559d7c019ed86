// Grafana dashboard primitives (schemaVersion 39, Grafana 10/11): dashboard, variables,
// rows, panels, targets, links and an automatic 24-column layout. Knows nothing about the
// catalog; catalog.libsonnet builds on it.
{
  // Every panel, target and variable reads Prometheus through the `datasource` variable.
  datasource:: { type: 'prometheus', uid: '${datasource}' },

  // Severity ladder colours (boards.md): thresholds and status panels share them.
  colors:: { ok: 'green', low: 'blue', medium: 'yellow', high: 'orange', critical: 'red' },

  // ------------------------------------------------------------------ targets
  // A PromQL query. refIds are assigned by the panel (A, B, ...) unless given.
  target(expr, legend, instant=false, format='time_series', interval=''):: {
    datasource: $.datasource,
    editorMode: 'code',
    expr: expr,
    legendFormat: legend,
    range: !instant,
    instant: instant,
    format: format,
    [if interval != '' then 'interval']: interval,
  },

  // Table targets are instant queries in table format (one row per series).
  tableTarget(expr, legend):: $.target(expr, legend, instant=true, format='table'),

  local withRefIds(targets) = std.mapWithIndex(
    function(i, t) { refId: std.char(65 + i) } + t, targets),

  // ------------------------------------------------------------------ thresholds
  // steps: [{color, value}], the first with value null (the base colour).
  thresholds(steps):: { mode: 'absolute', steps: steps },
  baseThresholds:: $.thresholds([{ color: 'green', value: null }]),

  // ------------------------------------------------------------------ panels
  // Common panel fields. w/h size the panel; x/y are filled in by layout().
  panel(type, title, description, targets, unit, w, h):: {
    type: type,
    title: title,
    description: description,
    datasource: $.datasource,
    targets: withRefIds(targets),
    gridPos: { w: w, h: h },
    links: [],
    fieldConfig: {
      defaults: {
        unit: unit,
        color: { mode: 'palette-classic' },
        thresholds: $.baseThresholds,
        mappings: [],
      },
      overrides: [],
    },
    options: {},
  },

  timeseries(title, description, targets, unit, w=12, h=8, thresholds=null, stack=false)::
    $.panel('timeseries', title, description, targets, unit, w, h) + {
      fieldConfig+: {
        defaults+: {
          [if thresholds != null then 'thresholds']: thresholds,
          custom: {
            drawStyle: 'line',
            lineWidth: 1,
            fillOpacity: if stack then 40 else 10,
            gradientMode: 'none',
            showPoints: 'never',
            spanNulls: false,
            axisPlacement: 'auto',
            axisSoftMin: 0,
            stacking: { mode: if stack then 'normal' else 'none', group: 'A' },
            // Threshold steps are drawn as dashed lines only when a panel has some.
            thresholdsStyle: { mode: if thresholds != null then 'dashed' else 'off' },
          },
        },
      },
      options: {
        legend: { displayMode: 'list', placement: 'bottom', showLegend: true, calcs: [] },
        tooltip: { mode: 'multi', sort: 'desc' },
      },
    },

  // One number per series, coloured by the thresholds (background) with a sparkline.
  stat(title, description, targets, unit, w=6, h=4, thresholds=null, graph=true)::
    $.panel('stat', title, description, targets, unit, w, h) + {
      fieldConfig+: {
        defaults+: {
          color: { mode: 'thresholds' },
          [if thresholds != null then 'thresholds']: thresholds,
        },
      },
      options: {
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        colorMode: if thresholds != null then 'background' else 'none',
        graphMode: if graph then 'area' else 'none',
        justifyMode: 'auto',
        orientation: 'auto',
        textMode: 'auto',
        wideLayout: true,
        showPercentChange: false,
      },
    },

  // Horizontal bars, one per series (shares, rankings).
  bargauge(title, description, targets, unit, w=12, h=8, thresholds=null, max=null)::
    $.panel('bargauge', title, description, targets, unit, w, h) + {
      fieldConfig+: {
        defaults+: {
          color: { mode: 'thresholds' },
          min: 0,
          [if max != null then 'max']: max,
          [if thresholds != null then 'thresholds']: thresholds,
        },
      },
      options: {
        reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false },
        displayMode: 'gradient',
        orientation: 'horizontal',
        showUnfilled: true,
        valueMode: 'color',
        namePlacement: 'auto',
        sizing: 'auto',
        minVizHeight: 16,
        minVizWidth: 8,
        maxVizHeight: 300,
      },
    },

  // Instant table: every target is a `tableTarget`; the frames are joined on their labels.
  // columns: {field name: header} renames (Value #A -> 'p95'); hidden: fields to drop.
  table(title, description, targets, unit, w=24, h=8, columns={}, hidden=[], thresholds=null)::
    $.panel('table', title, description, targets, unit, w, h) + {
      fieldConfig+: {
        defaults+: {
          [if thresholds != null then 'thresholds']: thresholds,
          custom: { align: 'auto', cellOptions: { type: 'auto' }, inspect: false },
        },
      },
      options: {
        showHeader: true,
        cellHeight: 'sm',
        footer: { show: false, reducer: ['sum'], countRows: false },
      },
      transformations: [
        { id: 'merge', options: {} },
        {
          id: 'organize',
          options: {
            excludeByName: { [f]: true for f in ['Time'] + hidden },
            indexByName: {},
            renameByName: columns,
          },
        },
      ],
    },

  // States over time (0/1 flags, statuses): one lane per series, coloured by mappings.
  stateTimeline(title, description, targets, unit='none', w=24, h=8, mappings=[], thresholds=null)::
    $.panel('state-timeline', title, description, targets, unit, w, h) + {
      fieldConfig+: {
        defaults+: {
          color: { mode: 'thresholds' },
          mappings: mappings,
          [if thresholds != null then 'thresholds']: thresholds,
          custom: { fillOpacity: 70, lineWidth: 0, hideFrom: { legend: false, tooltip: false, viz: false } },
        },
      },
      options: {
        mergeValues: true,
        showValue: 'auto',
        alignValue: 'left',
        rowHeight: 0.9,
        legend: { displayMode: 'list', placement: 'bottom', showLegend: false },
        tooltip: { mode: 'single', sort: 'none' },
      },
    },

  // Value -> text/colour mapping for stat, table and state-timeline panels.
  valueMap(map):: {
    type: 'value',
    options: { [k]: { text: map[k].text, color: map[k].color } for k in std.objectFields(map) },
  },

  // Section header: a full-width, expanded row.
  row(title):: {
    type: 'row',
    title: title,
    collapsed: false,
    panels: [],
    gridPos: { w: 24, h: 1 },
  },

  // Panel mixins.
  withLinks(links):: { links+: links },
  withOverrides(overrides):: { fieldConfig+: { overrides+: overrides } },
  withMappings(mappings):: { fieldConfig+: { defaults+: { mappings+: mappings } } },
  withMinMax(min=null, max=null):: {
    fieldConfig+: { defaults+: {
      [if min != null then 'min']: min,
      [if max != null then 'max']: max,
    } },
  },
  withLegendTable(calcs=['mean', 'max', 'lastNotNull']):: {
    options+: { legend+: { displayMode: 'table', calcs: calcs } },
  },

  // Series drawn as dashed lines (targets, baselines), by display name or a name regex.
  dashedSeries(name, color='purple', regex=false):: {
    matcher: { id: if regex then 'byRegexp' else 'byName', options: name },
    properties: [
      { id: 'custom.lineStyle', value: { fill: 'dash', dash: [10, 10] } },
      { id: 'custom.fillOpacity', value: 0 },
      { id: 'color', value: { mode: 'fixed', fixedColor: color } },
    ],
  },

  link(title, url):: { title: title, url: url, targetBlank: true },
  boardLink(title, uid):: { title: title, url: '/d/%s?${__url_time_range}' % uid, targetBlank: false },

  // ------------------------------------------------------------------ variables
  datasourceVariable:: {
    name: 'datasource',
    label: 'Data source',
    type: 'datasource',
    query: 'prometheus',
    current: {},
    hide: 0,
    includeAll: false,
    multi: false,
    options: [],
    refresh: 2,
    regex: '',
    skipUrlSync: false,
  },

  // A label_values() variable. `defaults` preselects values (empty: All); All is `.+`.
  queryVariable(name, label, query, defaults=[]):: {
    name: name,
    label: label,
    type: 'query',
    datasource: $.datasource,
    query: query,
    current: if defaults == [] then { selected: true, text: ['All'], value: ['$__all'] }
    else { selected: true, text: defaults, value: defaults },
    hide: 0,
    includeAll: true,
    allValue: '.+',
    multi: true,
    options: [],
    refresh: 2,
    regex: '',
    skipUrlSync: false,
    sort: 1,
  },

  // ------------------------------------------------------------------ layout
  // Place panels left to right in 24 columns, wrapping when the next one does not fit;
  // a row starts a new line. Assigns unique ids in order.
  layout(panels)::
    local step(state, p) =
      local w = p.gridPos.w;
      local h = p.gridPos.h;
      local wrap = p.type == 'row' || state.x + w > 24;
      local x = if wrap then 0 else state.x;
      local y = if wrap then state.y + state.lineH else state.y;
      local placed = p { id: std.length(state.out) + 1, gridPos: { x: x, y: y, w: w, h: h } };
      if p.type == 'row' then { x: 0, y: y + 1, lineH: 0, out: state.out + [placed] }
      else { x: x + w, y: y, lineH: std.max(if wrap then 0 else state.lineH, h), out: state.out + [placed] };
    std.foldl(step, panels, { x: 0, y: 0, lineH: 0, out: [] }).out,

  // ------------------------------------------------------------------ dashboard
  dashboard(uid, title, tags, description, variables, panels, links=[]):: {
    uid: uid,
    title: title,
    tags: tags,
    description: description,
    editable: false,
    schemaVersion: 39,
    version: 1,
    time: { from: 'now-6h', to: 'now' },
    timepicker: {},
    refresh: '1m',
    timezone: 'browser',
    graphTooltip: 1,
    fiscalYearStartMonth: 0,
    liveNow: false,
    weekStart: '',
    // Every board links every other through the shared tag.
    links: [{
      title: 'SaaSmon boards',
      type: 'dashboards',
      tags: ['saasmon'],
      asDropdown: true,
      includeVars: false,
      keepTime: true,
      targetBlank: false,
      icon: 'external link',
      tooltip: '',
      url: '',
    }] + links,
    annotations: {
      list: [{
        builtIn: 1,
        datasource: { type: 'grafana', uid: '-- Grafana --' },
        enable: true,
        hide: true,
        iconColor: 'rgba(0, 211, 255, 1)',
        name: 'Annotations & Alerts',
        type: 'dashboard',
      }],
    },
    templating: { list: [$.datasourceVariable] + variables },
    panels: $.layout(panels),
  },
}
