//! Tiny DOM builders. Text goes in through textContent / text nodes only;
//! nothing here ever parses a string as HTML.

export interface Props {
  id?: string;
  class?: string;
  text?: string;
  attrs?: Record<string, string>;
}

export type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Props = {},
  children: Child[] = [],
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (props.id) el.id = props.id;
  if (props.class) el.className = props.class;
  if (props.attrs) {
    for (const [name, value] of Object.entries(props.attrs)) el.setAttribute(name, value);
  }
  if (props.text !== undefined) el.textContent = props.text;
  for (const child of children) {
    if (child) el.append(child); // strings become text nodes
  }
  return el;
}

/** A Font Awesome icon, e.g. icon('fa-solid fa-right-to-bracket'). */
export function icon(classes: string): HTMLElement {
  return h('i', { class: classes, attrs: { 'aria-hidden': 'true' } });
}

export function show(el: HTMLElement, visible: boolean): void {
  el.classList.toggle('d-none', !visible);
}

export function spinner(label = 'Loading…'): HTMLElement {
  return h('div', { class: 'd-flex justify-content-center py-5' }, [
    h('div', { class: 'spinner-border text-secondary', attrs: { role: 'status' } }, [
      h('span', { class: 'visually-hidden', text: label }),
    ]),
  ]);
}
