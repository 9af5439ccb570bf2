// Small DOM helpers: build elements without innerHTML (API strings are never parsed as HTML).

type Attrs = Record<string, string | number | boolean | null | undefined | Record<string, string> | ((ev: Event) => void)>;
type Child = Node | string | null | undefined | false;

/** h('div', {class: 'x', text: 'hi', dataset: {a: '1'}, onclick: fn, 'aria-label': '…'}, ...children) */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Attrs = {}, ...children: (Child | Child[])[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = String(v);
    else if (k === 'text') el.textContent = String(v);
    else if (k === 'dataset' && typeof v === 'object') Object.assign(el.dataset, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

/** The element matching `sel` under `root`; a missing one is a bug in the panel, not a state. */
export function $<E extends Element = HTMLElement>(sel: string, root: ParentNode = document): E {
  const el = root.querySelector<E>(sel);
  if (!el) throw new Error(`panel: no element ${sel}`);
  return el;
}

/** Sets text only when it changed (no needless layout work on every poll). */
export function setText(el: Element, text: string | number): void {
  const t = String(text);
  if (el.textContent !== t) el.textContent = t;
}

export function setAttr(el: Element, name: string, value: string | number): void {
  const v = String(value);
  if (el.getAttribute(name) !== v) el.setAttribute(name, v);
}

/**
 * Keyed, in-place list update: rows for known keys are updated, new ones created, gone ones
 * removed; existing DOM nodes (and their focus) survive every refresh.
 */
export function syncRows<T, E extends HTMLElement>(
  container: Element,
  items: readonly T[],
  keyOf: (item: T) => string,
  create: (item: T) => E,
  update: (el: E, item: T) => void,
): void {
  const existing = new Map<string, E>();
  for (const el of container.children) if (el instanceof HTMLElement && el.dataset.key !== undefined) existing.set(el.dataset.key, el as E);
  let prev: Element | null = null;
  for (const item of items) {
    const key = keyOf(item);
    let el = existing.get(key);
    if (el) existing.delete(key);
    else {
      el = create(item);
      el.dataset.key = key;
    }
    update(el, item);
    const want: ChildNode | null = prev ? prev.nextSibling : container.firstChild;
    if (want !== el) container.insertBefore(el, want);
    prev = el;
  }
  for (const el of existing.values()) el.remove();
}

export const pct = (x: number): string => `${Math.round(x * 1000) / 10}%`;

export function mib(n: number): string {
  if (n >= 1024) return `${(n / 1024).toFixed(1)} GiB`;
  return `${n} MiB`;
}

export function age(ms: number): string {
  if (!Number.isFinite(ms)) return '—';
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

export function time(iso: string | null): string {
  if (!iso) return '—';
  return new Date(iso).toLocaleString(undefined, { hour12: false });
}

export const clock = (ms: number): string => new Date(ms).toLocaleTimeString(undefined, { hour12: false });

/** An empty-state row for a table body (one cell spanning every column). */
export function emptyRow(tbody: HTMLTableSectionElement, columns: number, text: string): HTMLTableRowElement {
  const row = tbody.querySelector<HTMLTableRowElement>('tr.empty') ?? h('tr', { class: 'empty' }, h('td', { colspan: columns }));
  setText(row.firstElementChild!, text);
  return row;
}

/** A table row with one empty cell per column, `col-<name>` classed. */
export function cellsRow(cols: readonly string[]): HTMLTableRowElement {
  return h('tr', {}, ...cols.map((c) => h('td', { class: `col-${c}` })));
}

export const cell = (tr: Element, col: string): HTMLElement => $(`.col-${col}`, tr);

/** What a view needs from the shell. */
export interface ViewContext {
  refresh(): Promise<void>;
  setBusy(on: boolean): void;
}
export type Loader = () => Promise<void>;
