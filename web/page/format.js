// Numbers and times as the page prints them; errors shown in place; downloads; bit-width names (W4A4).
import { $ } from './state.js';

export const pct = (v, d = 1) => (v == null || Number.isNaN(v) ? '—' : `${(100 * v).toFixed(d)}%`);
// A drop from FP32 in percentage points: positive drops print as "−2.3 pt".
export const pp = (v) => (v == null || Number.isNaN(v) ? '—' : Math.abs(v) < 0.0005 ? '±0.0 pt' : `${v > 0 ? '−' : '+'}${Math.abs(100 * v).toFixed(1)} pt`);
export function kb(bytes) {
  if (!bytes) return '—';
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(2)} MB` : `${(bytes / 1e3).toFixed(1)} kB`;
}
export function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}
export function fmtTime(s) {
  if (!Number.isFinite(s)) return '';
  s = Math.max(0, Math.round(s));
  return s >= 60 ? `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s` : `${s} s`;
}
export function showError(id, msg) {
  const el = $(id);
  el.textContent = msg || '';
  el.hidden = !msg;
}
export function download(name, data, type) {
  const blob = data instanceof Blob ? data : new Blob([data], { type });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}
export const parseWA = (s) => {
  const m = /^w([2-8])a([2-8])$/i.exec(String(s).trim());
  return m ? { wbits: Number(m[1]), abits: Number(m[2]), name: `W${m[1]}A${m[2]}` } : null;
};
