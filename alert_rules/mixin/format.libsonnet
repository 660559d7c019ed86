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

  threshold(value, unit)::
    if unit == 'ratio' then std.format('%g%%', value * 100)
    else if unit == 'seconds' then (
      if value < 1 then std.format('%g ms', value * 1000)
      else if value < 120 then std.format('%g s', value)
      else if value < 7200 then std.format('%g min', value / 60)
      else if value < 172800 then std.format('%g h', value / 3600)
      else std.format('%g days', value / 86400)
    )
    else if unit == 'per_second' then (
      if value >= 1 then std.format('%g/s', value)
      else if value * 60 >= 1 then std.format('%g/min', value * 60)
      else if value * 3600 >= 1 then std.format('%g/h', value * 3600)
      else std.format('%g/day', value * 86400)
    )
    else if unit == 'bytes' then std.format('%g MiB', value / 1048576)
    else if unit == 'sar' then std.format('%g SAR', value)
    else std.format('%g', value),

  // Go template pipeline that renders $value in the signal's unit.
  valueTemplate(unit)::
    if unit == 'ratio' then '{{ $value | humanizePercentage }}'
    else if unit == 'seconds' then '{{ $value | humanizeDuration }}'
    else '{{ $value | humanize }}',
}
