// Formatting shared by the Dask pages.
// 1.5 GiB / 812.0 MiB (the server's `bytes` filter agrees).
export function bytes(value) {
  if (value === null || value === undefined) return "–";
  const v = Number(value);
  for (const [unit, scale] of [["TiB", 2 ** 40], ["GiB", 2 ** 30], ["MiB", 2 ** 20], ["KiB", 2 ** 10]]) {
    if (Math.abs(v) >= scale) return `${(v / scale).toFixed(1)} ${unit}`;
  }
  return `${v.toFixed(0)} B`;
}
