// The boards as the mixin's grafanaDashboards (file name -> dashboard), the monitoring-
// mixins convention: each board is a function of the helpers built on the one _config.
{
  local s = (import 'lib/saasmon.libsonnet')($._config),

  grafanaDashboards+:: {
    'saasmon-ai.json': (import 'boards/ai.libsonnet')(s),
    'saasmon-api.json': (import 'boards/api.libsonnet')(s),
    'saasmon-bi.json': (import 'boards/bi.libsonnet')(s),
    'saasmon-business.json': (import 'boards/business.libsonnet')(s),
    'saasmon-cron.json': (import 'boards/cron.libsonnet')(s),
    'saasmon-database.json': (import 'boards/database.libsonnet')(s),
    'saasmon-exporters.json': (import 'boards/exporters.libsonnet')(s),
    'saasmon-frontend.json': (import 'boards/frontend.libsonnet')(s),
    'saasmon-integrations.json': (import 'boards/integrations.libsonnet')(s),
    'saasmon-overview.json': (import 'boards/overview.libsonnet')(s),
    'saasmon-realtime.json': (import 'boards/realtime.libsonnet')(s),
    'saasmon-redis.json': (import 'boards/redis.libsonnet')(s),
    'saasmon-slo.json': (import 'boards/slo.libsonnet')(s),
    'saasmon-ux-support.json': (import 'boards/ux-support.libsonnet')(s),
  },
}
