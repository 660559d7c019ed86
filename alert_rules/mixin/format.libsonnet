// Human-readable thresholds and durations for annotations.
{
  // A duration such as 5m, 1h, 1w multiplied by a time scale, in Prometheus syntax: whole
  // seconds, at least 1 and at least `floorSeconds`; unchanged at scale 1.
  scaleDuration(d, scale, floorSeconds=0)::
    if scale == 1 then d else
      local units = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
      local n = std.parseInt(d[:std.length(d) - 1]);
      // The epsilon keeps 300 * (1/60) at 5, not 4.999...
      std.format('%ds', std.max(std.max(1, std.floor(n * units[d[std.length(d) - 1]] * scale + 1e-9)),
                                std.ceil(floorSeconds))),

  // %.12g (rule thresholds as rendered) and %g; 0 spelled out because jsonnet up to 0.19
  // (Debian 12's) fails `%g` of 0 with "overflow" (log of 0), and users render with theirs.
  number(value):: if value == 0 then '0' else std.format('%.12g', value),
  local g(value) = if value == 0 then '0' else std.format('%g', value),

  threshold(value, unit)::
    if unit == 'ratio' then g(value * 100) + '%'
    else if unit == 'seconds' then (
      if value < 1 then g(value * 1000) + ' ms'
      else if value < 120 then g(value) + ' s'
      else if value < 7200 then g(value / 60) + ' min'
      else if value < 172800 then g(value / 3600) + ' h'
      else g(value / 86400) + ' days'
    )
    else if unit == 'per_second' then (
      if value >= 1 then g(value) + '/s'
      else if value * 60 >= 1 then g(value * 60) + '/min'
      else if value * 3600 >= 1 then g(value * 3600) + '/h'
      else g(value * 86400) + '/day'
    )
    else if unit == 'bytes' then g(value / 1048576) + ' MiB'
    else if unit == 'sar' then g(value) + ' SAR'
    else g(value),

  // Go template pipeline that renders $value in the signal's unit.
  valueTemplate(unit)::
    if unit == 'ratio' then '{{ $value | humanizePercentage }}'
    else if unit == 'seconds' then '{{ $value | humanizeDuration }}'
    else '{{ $value | humanize }}',
}
