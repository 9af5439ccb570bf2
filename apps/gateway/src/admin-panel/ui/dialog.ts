import { $, h } from './dom';

// One modal <dialog> (native: focus is trapped, Escape cancels) for confirmations and forms.

interface FieldBase {
  label: string;
  hint?: string;
}
export interface NumberField<N extends string> extends FieldBase {
  name: N;
  type?: 'number';
  value: number;
  step?: number;
  min?: number;
  max?: number;
}
export interface CheckboxField<C extends string> extends FieldBase {
  name: C;
  type: 'checkbox';
  value: boolean;
}
/** Numbers (NaN when left empty) and checkboxes, by field name. */
export type Values<N extends string, C extends string> = Record<N, number> & Record<C, boolean>;

export interface FormOptions<N extends string, C extends string> {
  title: string;
  fields?: (NumberField<N> | CheckboxField<C>)[];
  validate?: (v: Values<N, C>) => string | null;
  summary?: (v: Values<N, C>) => string;
  confirmLabel?: string;
  danger?: boolean;
  apply: (v: Values<N, C>) => Promise<void>;
}

/**
 * Opens a form; `validate(values)` returns an error string or null; `summary(values)` is the
 * confirmation text shown before `apply(values)` runs. API errors stay in the dialog.
 * Resolves true when applied, false when cancelled.
 */
export function formDialog<N extends string = never, C extends string = never>({
  title,
  fields = [],
  validate = () => null,
  summary,
  confirmLabel = 'Confirm',
  danger = false,
  apply,
}: FormOptions<N, C>): Promise<boolean> {
  const d = $<HTMLDialogElement>('#dlg');
  const error = h('p', { class: 'dlg-error', role: 'alert', id: 'dlg-error' });
  const confirmText = h('p', { class: 'dlg-summary', id: 'dlg-summary', hidden: true });
  const inputs = fields.map((f) => {
    const id = `dlg-${f.name}`;
    const input =
      f.type === 'checkbox'
        ? h('input', { type: 'checkbox', id, name: f.name, checked: f.value === true })
        : h('input', { type: 'number', id, name: f.name, value: f.value, step: f.step, min: f.min, max: f.max, required: true, inputmode: 'decimal' });
    return {
      f,
      input,
      row: h(
        'div',
        { class: `field field-${f.type ?? 'number'}` },
        h('label', { for: id, text: f.label }),
        input,
        f.hint ? h('small', { text: f.hint }) : null,
      ),
    };
  });
  const back = h('button', { type: 'button', class: 'secondary', text: 'Back', hidden: true });
  const cancel = h('button', { type: 'button', class: 'secondary', text: 'Cancel' });
  const submit = h('button', { type: 'submit', class: danger ? 'danger' : 'primary', text: fields.length ? 'Review…' : confirmLabel });
  const form = h(
    'form',
    { method: 'dialog', class: 'dlg-form' },
    h('h2', { text: title, id: 'dlg-title' }),
    ...inputs.map((i) => i.row),
    confirmText,
    error,
    h('div', { class: 'dlg-buttons' }, back, cancel, submit),
  );
  d.replaceChildren(form);
  d.setAttribute('aria-labelledby', 'dlg-title');

  const values = (): Values<N, C> =>
    Object.fromEntries(
      inputs.map(({ f, input }) => [f.name, f.type === 'checkbox' ? input.checked : input.value.trim() === '' ? NaN : Number(input.value)]),
    ) as Values<N, C>;
  let reviewing = fields.length === 0;
  if (reviewing) {
    confirmText.textContent = summary ? summary(values()) : '';
    confirmText.hidden = false;
  }
  const setReview = (on: boolean): void => {
    reviewing = on;
    for (const { input } of inputs) input.disabled = on;
    confirmText.hidden = !on;
    back.hidden = !on || fields.length === 0;
    submit.textContent = on ? confirmLabel : 'Review…';
  };

  return new Promise((resolve) => {
    let done = false;
    const onCancel = (): void => finish(false);
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      d.removeEventListener('cancel', onCancel);
      if (d.open) d.close();
      resolve(ok);
    };
    cancel.addEventListener('click', () => finish(false));
    back.addEventListener('click', () => {
      error.textContent = '';
      setReview(false);
      inputs[0]?.input.focus();
    });
    d.addEventListener('cancel', onCancel);
    form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      void (async () => {
        error.textContent = '';
        const v = values();
        if (!reviewing) {
          const problem = validate(v);
          if (problem) {
            error.textContent = problem;
            return;
          }
          confirmText.textContent = summary ? summary(v) : 'Apply this change?';
          setReview(true);
          submit.focus();
          return;
        }
        submit.disabled = true;
        try {
          await apply(v);
          finish(true);
        } catch (e) {
          error.textContent = e instanceof Error ? e.message : String(e);
        } finally {
          submit.disabled = false;
        }
      })();
    });
    d.showModal();
    (inputs[0]?.input ?? submit).focus();
  });
}

/** A yes/no confirmation whose action runs only after the operator confirms. */
export function confirmDialog(o: { title: string; message: string; confirmLabel: string; danger?: boolean; apply: () => Promise<void> }): Promise<boolean> {
  return formDialog({ title: o.title, summary: () => o.message, confirmLabel: o.confirmLabel, danger: o.danger, apply: () => o.apply() });
}
