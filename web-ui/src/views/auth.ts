//! Sign-in / register screen. Owns the two forms and the error alert;
//! on success hands the signed-in user to the conversations screen.

import { errorMessage } from '../api/client';
import type { AuthResult } from '../api/types';
import type { AppContext } from '../app';
import { h, icon, show } from '../components/dom';

function field(
  id: string,
  label: string,
  type: string,
  autocomplete: string,
  required = true,
): { wrap: HTMLElement; input: HTMLInputElement } {
  const input = h('input', {
    id,
    class: 'form-control',
    attrs: { type, name: id, autocomplete },
  });
  input.required = required;
  const wrap = h('div', { class: 'mb-3' }, [
    h('label', { class: 'form-label', text: label, attrs: { for: id } }),
    input,
  ]);
  return { wrap, input };
}

function submitButton(id: string, iconClass: string, label: string): HTMLButtonElement {
  return h('button', { id, class: 'btn btn-primary w-100', attrs: { type: 'submit' } }, [
    icon(`${iconClass} me-2`),
    label,
  ]);
}

function toggleLink(id: string, prompt: string, label: string): { wrap: HTMLElement; link: HTMLAnchorElement } {
  const link = h('a', { id, class: 'link-primary', text: label, attrs: { href: '#', role: 'button' } });
  const wrap = h('p', { class: 'text-center text-body-secondary small mt-3 mb-0' }, [`${prompt} `, link]);
  return { wrap, link };
}

export function renderAuth(ctx: AppContext): HTMLElement {
  const error = h('div', {
    id: 'auth-error',
    class: 'alert alert-danger d-none',
    attrs: { role: 'alert' },
  });

  // Sign in
  const login = field('login', 'Username or email', 'text', 'username');
  const password = field('password', 'Password', 'password', 'current-password');
  const signInBtn = submitButton('sign-in', 'fa-solid fa-right-to-bracket', 'Sign in');
  const toRegister = toggleLink('show-register', 'New here?', 'Create an account');
  const signInForm = h('form', { id: 'sign-in-form' }, [
    login.wrap,
    password.wrap,
    signInBtn,
    toRegister.wrap,
  ]);

  // Register
  const regUsername = field('reg-username', 'Username', 'text', 'username');
  const regEmail = field('reg-email', 'Email', 'email', 'email');
  const regPassword = field('reg-password', 'Password', 'password', 'new-password');
  const regDisplayName = field('reg-display-name', 'Display name (optional)', 'text', 'nickname', false);
  const registerBtn = submitButton('register', 'fa-solid fa-user-plus', 'Create account');
  const toSignIn = toggleLink('show-sign-in', 'Already have an account?', 'Sign in');
  const registerForm = h('form', { id: 'register-form', class: 'd-none' }, [
    regUsername.wrap,
    regEmail.wrap,
    regPassword.wrap,
    regDisplayName.wrap,
    registerBtn,
    toSignIn.wrap,
  ]);

  // The server is the one validator: its messages show in #auth-error.
  signInForm.noValidate = true;
  registerForm.noValidate = true;

  const heading = h('h1', { class: 'h4 mb-4 text-center', text: 'Sign in to ChatApp' });

  function setError(message: string | null): void {
    error.textContent = message ?? '';
    show(error, message !== null);
  }

  function showMode(mode: 'sign-in' | 'register'): void {
    setError(null);
    show(signInForm, mode === 'sign-in');
    show(registerForm, mode === 'register');
    heading.textContent = mode === 'sign-in' ? 'Sign in to ChatApp' : 'Create your account';
    (mode === 'sign-in' ? login.input : regUsername.input).focus();
  }

  async function submit(button: HTMLButtonElement, call: () => Promise<AuthResult>): Promise<void> {
    setError(null);
    button.disabled = true;
    try {
      const result = await call();
      ctx.navigate({ name: 'conversations', me: result.user });
    } catch (err) {
      setError(errorMessage(err));
      button.disabled = false;
    }
  }

  toRegister.link.addEventListener('click', (e) => {
    e.preventDefault();
    showMode('register');
  });
  toSignIn.link.addEventListener('click', (e) => {
    e.preventDefault();
    showMode('sign-in');
  });

  signInForm.addEventListener('submit', (e) => {
    e.preventDefault();
    void submit(signInBtn, () =>
      ctx.api.login({ login: login.input.value.trim(), password: password.input.value }),
    );
  });

  registerForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const displayName = regDisplayName.input.value.trim();
    void submit(registerBtn, () =>
      ctx.api.register({
        username: regUsername.input.value.trim(),
        email: regEmail.input.value.trim(),
        password: regPassword.input.value,
        ...(displayName ? { display_name: displayName } : {}),
      }),
    );
  });

  queueMicrotask(() => login.input.focus());

  return h('main', { class: 'auth-screen container d-flex align-items-center justify-content-center' }, [
    h('div', { class: 'card auth-card shadow-sm w-100' }, [
      h('div', { class: 'card-body p-4' }, [
        h('div', { class: 'text-center mb-3 brand-mark' }, [icon('fa-solid fa-comments fa-2x text-primary')]),
        heading,
        error,
        signInForm,
        registerForm,
      ]),
    ]),
  ]);
}
