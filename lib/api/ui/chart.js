// A small bar chart of finished jobs per minute (completed up, failed in red on top), as SVG
// built element by element.
import { svg } from './dom.js';

// buckets: [{completed, failed}] oldest first, one per minute.
export function barChart(buckets, { width = 150, height = 36, label = '' } = {}) {
  const max = Math.max(1, ...buckets.map((b) => b.completed + b.failed));
  const n = buckets.length;
  const gap = n > 20 ? 0.5 : 2;
  const w = (width - gap * (n - 1)) / n;
  const root = svg('svg', { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: 'none', class: 'chart', role: 'img' });
  const total = buckets.reduce((a, b) => ({ c: a.c + b.completed, f: a.f + b.failed }), { c: 0, f: 0 });
  root.appendChild(svg('title', {}, `${label}: ${total.c} completed, ${total.f} failed`));
  root.appendChild(svg('line', { x1: 0, y1: height - 0.5, x2: width, y2: height - 0.5, class: 'axis' }));
  buckets.forEach((b, i) => {
    const x = i * (w + gap);
    const hc = (b.completed / max) * (height - 2);
    const hf = (b.failed / max) * (height - 2);
    if (hc > 0) root.appendChild(svg('rect', { x, y: height - hc, width: w, height: hc, class: 'ok' }));
    if (hf > 0) root.appendChild(svg('rect', { x, y: height - hc - hf, width: w, height: hf, class: 'bad' }));
  });
  return root;
}
