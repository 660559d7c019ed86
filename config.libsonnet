// Everything a user may want to change, in one place (monitoring-mixin style): the rules
// (alert_rules/mixin) and the boards (dashboards/) read this one _config. The catalog and
// signals come from alert_rules/generated/catalog.json, which the generator writes from the
// YAML catalog: thresholds are never typed in this file.
local fmt = import 'alert_rules/mixin/format.libsonnet';

{
  _config+:: {
    catalog: import 'alert_rules/generated/catalog.json',

    // Rule id -> threshold; override one number here to move the alert (and the panel).
    // An escalation twin follows its rule's threshold, so it has no entry of its own.
    thresholds: { [r.id]: r.value for r in $._config.catalog.rules if r.escalation_of == null },

    // Prometheus job names of the bundle's scrape targets (deploy/prometheus and make demo).
    jobs: {
      app: 'saasmon-app',
      appProbe: 'saasmon-app-probe',
      postgres: 'saasmon-postgres',
      redis: 'saasmon-redis',
      cron: 'saasmon-cron',
      integrations: 'saasmon-integrations',
      integrationProbe: 'saasmon-integration-probe',
      business: 'saasmon-business',
      webvitals: 'saasmon-webvitals',
      node: 'node',
      storageProbe: 'blackbox-storage',
      smsRelay: 'saasmon-sms-relay',
      alertmanager: 'alertmanager',
      prometheus: 'prometheus',
    },
    // The job of a cloudwatch_exporter reading CloudFront (nova-crm's CDN hit rate). Not a
    // job of the bundle: it needs AWS credentials, so deploy/prometheus shows it commented.
    cloudwatchJob: 'cloudwatch',
    // The probe target (instance label) of our own status page in the integration-probe
    // job: saas-ops-module's "status page updated within 30 minutes" reads its incidents.
    statusPageTarget: 'status-page',
    // Label matchers of each job selector, as data: rule descriptions and tests read them;
    // `selectors` below renders them for the signal expressions.
    selectorMatchers: {
      appSelector: { job: ['=', $._config.jobs.app] },
      appProbeSelector: { job: ['=', $._config.jobs.appProbe] },
      appHealthSelector: { job: ['=', $._config.jobs.appProbe] },
      postgresSelector: { job: ['=', $._config.jobs.postgres] },
      redisSelector: { job: ['=', $._config.jobs.redis] },
      cronSelector: { job: ['=', $._config.jobs.cron] },
      integrationsSelector: { job: ['=', $._config.jobs.integrations] },
      integrationProbeSelector: { job: ['=', $._config.jobs.integrationProbe] },
      businessSelector: { job: ['=', $._config.jobs.business] },
      webVitalsSelector: { job: ['=', $._config.jobs.webvitals] },
      nodeSelector: { job: ['=', $._config.jobs.node] },
      storageSelector: { job: ['=', $._config.jobs.storageProbe] },
      // Probes of our own endpoints (not vendors'): their TLS certificates are ours to renew.
      tlsProbeSelector: { job: ['=~', '%s|%s' % [$._config.jobs.appProbe, $._config.jobs.storageProbe]] },
      cloudwatchSelector: { job: ['=', $._config.cloudwatchJob] },
      statusPageSelector: { job: ['=', $._config.jobs.integrationProbe], instance: ['=', $._config.statusPageTarget] },
      saasmonSelector: { job: ['=~', 'saasmon-.*'] },
      smsRelaySelector: { job: ['=', $._config.jobs.smsRelay] },
      alertmanagerSelector: { job: ['=', $._config.jobs.alertmanager] },
      prometheusSelector: { job: ['=', $._config.jobs.prometheus] },
    },
    // Substituted into signal expressions as %(name)s.
    selectors: {
      [key]: std.join(',', [
        '%s%s"%s"' % [label, $._config.selectorMatchers[key][label][0], $._config.selectorMatchers[key][label][1]]
        for label in std.objectFields($._config.selectorMatchers[key])
      ])
      for key in std.objectFields($._config.selectorMatchers)
    } + {
      // Route patterns (the middleware's route label) of sign-in and sign-out: the guide
      // names none, these are the reference app's; a regex.
      authRoutes: '/api/login|/api/logout|/api/auth/.*',
      // Not from a guide: the least request rate (per second) last week must have had for
      // ApiTrafficSurge/ApiTrafficDrop to compare against it. Below it (a quiet hour, a new
      // app with no last week) a ratio is noise or +Inf. 0.1/s = 30 requests in 5 minutes.
      trafficBaselineMinRate: '0.1',
      // Not from a guide: the link speed (bytes/s) of NICs that report none (virtual ones
      // report no node_network_speed_bytes, or -1); 0 leaves them out of HostNetworkSaturated.
      hostNetworkLinkSpeedBytes: '0',
      // estimate-library § cache warming: the key pattern of warmed library items.
      cacheWarmPattern: 'library:item:*',
      // For the rules that read ALERTS: the configured alert names, and the label that
      // holds the guides' four levels (severity itself unless severityScheme maps it).
      alertNamePrefix: $._config.alertNamePrefix,
      guideSeverityLabel: if $._config.severityScheme == 'guides' then 'severity' else $._config.guideSeverityLabel,
    },

    runbookURLPattern: 'https://github.com/saasmon/saasmon/blob/main/docs/runbooks/%s.md',
    // nova-crm asks for a link to the logs in every notification: the logs_url annotation
    // of every alert (Prometheus expands {{ $labels.job }} and the like in it). '' = none.
    logsURL: '',
    // Grafana of the compose stack; '' drops dashboard_url from the alerts.
    dashboardURLPattern: 'http://localhost:3000/d/%s',

    // Catalog area -> the uid of the board that shows it: alerts link it as dashboard_url
    // and the dashboards (dashboards/lib) import the same map for their links.
    dashboards: {
      api: 'saasmon-api',
      health: 'saasmon-api',
      frontend: 'saasmon-frontend',
      realtime: 'saasmon-realtime',
      database: 'saasmon-database',
      host: 'saasmon-database',
      redis: 'saasmon-redis',
      cron: 'saasmon-cron',
      integrations: 'saasmon-integrations',
      incident: 'saasmon-integrations',
      business: 'saasmon-business',
      ai: 'saasmon-ai',
      support: 'saasmon-ux-support',
      storage: 'saasmon-slo',
      exporter: 'saasmon-exporters',
      slo: 'saasmon-slo',  // burn-rate alerts of every objective
      meta: 'saasmon-exporters',  // Watchdog: the alerting pipeline itself
    },

    // Conventions (docs/alert-rules.md#conventions). Severity labels: 'guides' keeps the
    // catalog's four levels (critical/high/medium/low); 'mixin' maps them to the
    // monitoring-mixin scale (critical/warning/info) and keeps the guides' level in
    // `guideSeverityLabel`, so routes and inhibition can still tell high from medium.
    severityScheme: 'guides',
    severitySchemes: {
      guides: { critical: 'critical', high: 'high', medium: 'medium', low: 'low', none: 'none' },
      // Watchdog (none) becomes info: mixin linters accept only critical/warning/info.
      mixin: { critical: 'critical', high: 'warning', medium: 'warning', low: 'info', none: 'info' },
    },
    guideSeverityLabel: 'guide_severity',
    // Prepended to every alert name (e.g. 'Saasmon'): TargetDown, Watchdog and RedisDown
    // also exist in kube-prometheus and the redis mixin. '' keeps the names as they are.
    alertNamePrefix: '',
    // Static labels added to every alert and recording rule (e.g. { team: 'crm' }).
    extraLabels: {},
    // The label that tells clusters (or Prometheus shards/tenants) apart: every aggregation
    // and vector match of the rules keeps it, and every board filters by it. '' = none.
    clusterLabel: 'cluster',
    // Rules per group, at most (the Mimir/Cortex ruler's default limit is 20): an area's
    // rules are split into numbered groups, whole alert ladders at a time. 0 = no limit.
    maxRulesPerGroup: 20,

    // Multiwindow burn-rate tiers of the SLO alerts (alert_rules/mixin/slo.libsonnet): [severity,
    // long window, short window, burn-rate factor]; the page/ticket split.
    burnRateWindows: [
      { severity: 'critical', long: '1h', short: '5m', factor: 14.4, 'for': '2m' },
      { severity: 'critical', long: '6h', short: '30m', factor: 6, 'for': '15m' },
      { severity: 'medium', long: '1d', short: '2h', factor: 3, 'for': '1h' },
      { severity: 'medium', long: '3d', short: '6h', factor: 1, 'for': '3h' },
    ],

    // Time scaling: every `for`, range window, subquery step and offset of the rules is
    // multiplied by this (fault drills use 1/60: an hour passes in a minute). 1 = the
    // durations the catalog states. Record names keep the real window (`...:rate5m`).
    timeScale: 1,
    // With timeScale < 1: the shortest range window (seconds). A rate needs two samples;
    // drills use four scrape intervals so one late scrape does not make it flicker.
    minRangeWindowSeconds: 0,
    // A duration of the rules as rendered; `range` for range windows (floored as above).
    scaledDuration(d, range=false)::
      fmt.scaleDuration(d, $._config.timeScale, if range then $._config.minRangeWindowSeconds else 0),
    // What the catalog's PromQL templates are formatted with: the selectors above and each
    // duration the catalog uses (alert_rules/generator/durations.py names them).
    promqlParams:: $._config.selectors
                   + { ['range:' + d]: $._config.scaledDuration(d, true) for d in $._config.catalog.durations.range }
                   + { ['duration:' + d]: $._config.scaledDuration(d) for d in $._config.catalog.durations.duration },
  },
}
