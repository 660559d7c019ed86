// Overview: one green / yellow / red status per board from the firing alerts of its areas,
// then nova-crm's post-launch dashboard: every metric it lists against its target (green),
// between target and alert level (yellow) and past the alert level (red).
function(s)
local g = s.g;
local c = s.c;
local cfg = s.cfg;

local b = s.board('saasmon-overview', 'Overview', 'overview', std.objectValues(cfg.jobs), instance=false,
                  allByDefault=true,
                  description='Status of every area (firing alerts) and the nova-crm post-launch targets; links to every board.');

local titles = {
  'saasmon-api': 'API and errors',
  'saasmon-frontend': 'Frontend Web Vitals',
  'saasmon-realtime': 'Realtime',
  'saasmon-database': 'Database (PostgreSQL)',
  'saasmon-redis': 'Redis',
  'saasmon-cron': 'Cron jobs',
  'saasmon-integrations': 'Integrations',
  'saasmon-business': 'Business / Executive',
  'saasmon-ai': 'AI',
  'saasmon-ux-support': 'UX and support',
  'saasmon-slo': 'SLOs and error budgets',
  'saasmon-exporters': 'Exporter self-monitoring',
};
// Board uid -> the catalog areas whose alerts it shows (inverse of the alerts' map).
local areasOf(uid) = [a for a in std.objectFields(cfg.dashboards) if cfg.dashboards[a] == uid && a != 'slo'];
local alerts(areas, severities) =
  'count(ALERTS{alertstate="firing",%s,area=~"%s",severity=~"%s"})' % [b.sel(['job']), std.join('|', areas), severities];
local statusMap = [g.valueMap({
  '0': { text: 'OK', color: 'green' },
  '1': { text: 'WARNING', color: 'yellow' },
  '2': { text: 'ALERT', color: 'red' },
})];

local status(uid) =
  local areas = areasOf(uid);
  g.stat(titles[uid],
         'Worst firing alert of the areas %s: green none, yellow a low or medium one, red a high or critical one (nova-crm § 1.1 Comprehensive Monitoring Dashboard, green/yellow/red per area). Click through to the board.' % std.join(', ', areas),
         [g.target('clamp_max(%s, 1) * 2 or clamp_max(%s, 1) or vector(0)' % [alerts(areas, 'critical|high'), alerts(areas, 'medium|low')], 'status')],
         'none', w=4, h=3, graph=false,
         thresholds=g.thresholds([{ color: 'green', value: null }, { color: 'yellow', value: 1 }, { color: 'red', value: 2 }]))
  + g.withMappings(statusMap)
  + g.withLinks([g.boardLink(titles[uid], uid)]);

// nova-crm's dashboard object: each metric it lists with its target and alert level (the
// lowest, when the catalog adds a second level to the same metric).
// A rule nova-crm shares with another guide cites nova-crm first (catalog order): its own
// citation ends where the next `guide § ...` begins.
// std.split takes one character in jsonnet up to 0.19 (Debian 12's): split on a longer one.
local splitOn(text, sep) = std.split(std.strReplace(text, sep, '\u0001'), '\u0001');
local section(r) = splitOn(splitOn(r.source, '; ')[0], ' › ');
local novaSource(r) =
  local parts = splitOn(r.source, '; ');
  local others = [i for i in std.range(1, std.length(parts) - 1) if std.length(std.findSubstr(' § ', parts[i])) > 0];
  std.join('; ', parts[0:(if others == [] then std.length(parts) else others[0])]);
local nova = [r for r in cfg.catalog.rules if std.member(r.guides, 'nova-crm') && r.target != null
                                           && r.escalation_of == null
                                           && std.length(section(r)) >= 3];
local order = ['health', 'ux', 'business', 'ai'];
local groups = std.sort(std.set([section(r)[1] for r in nova]),
                        function(grp) '%d %s' % [std.find(std.split(grp, '.')[0], order)[0], grp]);

local novaStat(signal, grp) =
  local sig = c.signal(signal);
  local rules = [r for r in nova if r.signal == signal && section(r)[1] == grp];
  local first = rules[0];
  local values = [c.value(r) for r in rules];
  local alert = if sig.bad == 'above' then std.foldl(std.min, values, values[0]) else std.foldl(std.max, values, values[0]);
  // Steps colour values >= their edge; a target of 0 on a bad-above metric means any
  // value above it is no longer on target.
  local yellowFrom = if first.target == 0 then 1e-9 else first.target;
  local steps =
    if sig.bad == 'above' then [{ color: 'green', value: null }, { color: 'yellow', value: yellowFrom }, { color: 'red', value: alert }]
    else [{ color: 'red', value: null }, { color: 'yellow', value: alert }, { color: 'green', value: first.target }];
  g.stat(section(first)[2],
         '%s: target %s, alert %s (%s). %s' % [first.measure, c.threshold(first.target, sig.unit),
                                               std.join(' / ', [c.threshold(v, sig.unit) for v in values]), novaSource(first), sig.meaning],
         [g.target(b.query(signal, first.match), '{{job}}')], c.unit(signal), w=4, h=4,
         thresholds=g.thresholds(steps))
  + g.withLinks([c.runbook(signal), g.boardLink(titles[cfg.dashboards[sig.area]], cfg.dashboards[sig.area])]);

b.dashboard(
  [g.row('Status by board (firing alerts)')]
  + [status(uid) for uid in std.objectFields(titles)]
  + std.flattenArrays([
    [g.row('nova-crm post-launch dashboard: ' + grp)]
    + [novaStat(sig, grp) for sig in std.uniq([r.signal for r in nova if section(r)[1] == grp])]
    for grp in groups
  ])
)
