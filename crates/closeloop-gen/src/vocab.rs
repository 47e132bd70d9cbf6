//! What the generated customers are made of: places, people, and what they
//! write. Comments cover the reasons people complain and praise in retail
//! programmes (delivery, stock, staff, price, billing, website, returns,
//! installation), in French and English, with the accents people type.

/// Regions with their country and stores (the sample owner directory in
/// `config/owners.toml` follows these).
pub const REGIONS: &[(&str, &str, &[&str])] = &[
    (
        "FR-ARA",
        "FR",
        &[
            "LYON-01",
            "LYON-02",
            "GRENOBLE-01",
            "ANNECY-01",
            "ST-ETIENNE-01",
        ],
    ),
    (
        "FR-IDF",
        "FR",
        &[
            "PARIS-01",
            "PARIS-02",
            "PARIS-03",
            "VERSAILLES-01",
            "CRETEIL-01",
            "NANTERRE-01",
        ],
    ),
    (
        "FR-PAC",
        "FR",
        &["MARSEILLE-01", "MARSEILLE-02", "NICE-01", "TOULON-01"],
    ),
    ("FR-HDF", "FR", &["LILLE-01", "LILLE-02", "AMIENS-01"]),
    (
        "FR-NAQ",
        "FR",
        &["BORDEAUX-01", "BORDEAUX-02", "LIMOGES-01"],
    ),
    ("FR-OCC", "FR", &["TOULOUSE-01", "MONTPELLIER-01"]),
    ("BE-BRU", "BE", &["BRUXELLES-01", "BRUXELLES-02"]),
    ("CH-GE", "CH", &["GENEVE-01"]),
];

/// Touchpoints with their weight in a programme's answers.
pub const TOUCHPOINTS: &[(&str, u32)] = &[
    ("purchase", 30),
    ("delivery", 22),
    ("returns", 8),
    ("support_call", 14),
    ("onboarding", 4),
    ("installation", 8),
    ("billing", 6),
    ("website", 8),
];

pub const CHANNELS: &[(&str, u32)] = &[
    ("store", 30),
    ("web", 28),
    ("app", 14),
    ("call_center", 12),
    ("email", 10),
    ("chat", 6),
];

pub const PRODUCT_LINES: &[&str] = &[
    "electromenager",
    "informatique",
    "telephonie",
    "tv-son",
    "jardin",
    "cuisine",
];

pub const SEGMENTS: &[(&str, u32)] = &[("standard", 55), ("gold", 15), ("b2b", 12), ("new", 18)];

/// The survey that asked, by touchpoint: which scores it carries.
pub fn source_for(touchpoint: &str) -> &'static str {
    match touchpoint {
        "purchase" => "survey.post-purchase",
        "delivery" => "survey.post-delivery",
        "support_call" => "ivr.post-call",
        "website" | "onboarding" => "app.in-app",
        _ => "survey.relationship",
    }
}

pub const FIRST_NAMES: &[&str] = &[
    "Julie",
    "Thomas",
    "Camille",
    "Nicolas",
    "Sarah",
    "Lucas",
    "Emma",
    "Hugo",
    "Léa",
    "Mehdi",
    "Inès",
    "Chloé",
    "Karim",
    "Anne",
    "Paul",
    "Zoé",
    "Théo",
    "Anaïs",
    "Jérôme",
    "Hélène",
    "François",
    "Maëlle",
    "Noémie",
    "Yanis",
    "Sophie",
    "Olivier",
];

pub const LAST_NAMES: &[&str] = &[
    "Moreau", "Martin", "Bernard", "Dubois", "Petit", "Durand", "Leroy", "Roux", "Fournier",
    "Girard", "Benali", "Nguyen", "Lambert", "Lefèvre", "Müller", "Peeters", "Janssens",
    "Rousseau", "Faure", "Mercier", "Boucher", "Gauthier",
];

/// What a comment is about; the root cause a manager would record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Theme {
    Delivery,
    Stock,
    Staff,
    Price,
    Billing,
    Website,
    Returns,
    Installation,
}

/// The themes a touchpoint's comments are mostly about.
pub fn themes_for(touchpoint: &str) -> &'static [Theme] {
    use Theme::*;
    match touchpoint {
        "delivery" => &[Delivery, Delivery, Delivery, Stock, Staff],
        "returns" => &[Returns, Returns, Staff, Billing],
        "support_call" => &[Staff, Staff, Billing, Delivery, Returns],
        "installation" => &[Installation, Installation, Installation, Staff],
        "billing" => &[Billing, Billing, Price],
        "website" | "onboarding" => &[Website, Website, Website, Price],
        _ => &[Stock, Staff, Price, Staff, Website, Delivery],
    }
}

/// Complaints by theme: `{d}` becomes a number of days or weeks.
pub fn complaints(theme: Theme, french: bool) -> &'static [&'static str] {
    use Theme::*;
    match (theme, french) {
        (Delivery, true) => &[
            "Livraison avec {d} jours de retard et personne ne répond au téléphone.",
            "Le livreur n'est jamais passé, j'ai posé une journée de congé pour rien.",
            "Colis abîmé à l'arrivée, le carton était éventré.",
            "Créneau de livraison non respecté, deux fois de suite.",
        ],
        (Delivery, false) => &[
            "Delivery was {d} days late and nobody answers the phone.",
            "The driver never showed up, I took a day off for nothing.",
            "The parcel arrived damaged, the box was torn open.",
        ],
        (Stock, true) => &[
            "Article annoncé en stock sur le site, introuvable en magasin.",
            "Rupture de stock depuis {d} semaines, aucune date de réapprovisionnement.",
            "On m'a vendu un modèle d'exposition sans me prévenir.",
        ],
        (Stock, false) => &[
            "The website said in stock, the store had none.",
            "Out of stock for {d} weeks and no restock date.",
        ],
        (Staff, true) => &[
            "Vendeur peu aimable, attente de 40 minutes en caisse.",
            "Personne pour me conseiller au rayon, j'ai fini par partir.",
            "Le conseiller m'a raccroché au nez.",
            "Le SAV me renvoie d'un service à l'autre depuis {d} jours.",
        ],
        (Staff, false) => &[
            "Rude staff and a 40-minute queue at the till.",
            "Nobody on the floor to help, I left without buying.",
            "Support keeps bouncing me from one team to another.",
        ],
        (Price, true) => &[
            "Prix plus cher qu'affiché en rayon, on a refusé de l'appliquer.",
            "Trop cher pour la qualité, le même produit est 20 % moins cher ailleurs.",
        ],
        (Price, false) => &[
            "The till price was higher than the shelf label and they would not honour it.",
            "Overpriced for the quality.",
        ],
        (Billing, true) => &[
            "Facturé deux fois, toujours pas remboursé après {d} semaines.",
            "Prélèvement non autorisé sur mon compte, c'est inadmissible.",
            "Facture erronée, la remise promise n'apparaît pas.",
        ],
        (Billing, false) => &[
            "Charged twice and still no refund after {d} weeks.",
            "The invoice is wrong, the promised discount is missing.",
        ],
        (Website, true) => &[
            "Le site plante au moment du paiement, impossible de commander.",
            "Application très lente, le panier se vide tout seul.",
            "Impossible de créer mon compte, le code de validation n'arrive jamais.",
        ],
        (Website, false) => &[
            "The website crashes at checkout.",
            "The app is slow and my basket keeps emptying.",
        ],
        (Returns, true) => &[
            "Trop compliqué de retourner l'article, j'ai dû appeler quatre fois.",
            "Retour refusé alors que j'étais dans les délais.",
            "Remboursement du retour toujours en attente après {d} semaines.",
        ],
        (Returns, false) => &[
            "Returning the item was a nightmare, I had to call four times.",
            "Refund for my return still pending after {d} weeks.",
        ],
        (Installation, true) => &[
            "Installation bâclée, le technicien n'est jamais venu.",
            "Le lave-vaisselle fuit depuis l'installation.",
            "Technicien arrivé avec {d} heures de retard et sans les pièces.",
        ],
        (Installation, false) => &[
            "Sloppy installation, the technician never came back.",
            "The dishwasher has leaked since it was installed.",
        ],
    }
}

/// Words that make a complaint a churn or legal threat, added to some.
pub fn threats(french: bool) -> &'static [&'static str] {
    if french {
        &[
            "Je vais résilier mon abonnement si rien ne bouge.",
            "Je contacte mon avocat, c'est inadmissible.",
            "Appareil dangereux : il a pris feu au bout d'une semaine !",
        ]
    } else {
        &[
            "I want to cancel my account, this is the third time.",
            "My lawyer will hear about this.",
        ]
    }
}

/// Middling answers.
pub fn neutral(french: bool) -> &'static [&'static str] {
    if french {
        &[
            "Correct, sans plus.",
            "Délai un peu long mais produit conforme.",
            "Le site est lent mais ça a fini par marcher.",
            "Bon produit, livraison un peu longue.",
        ]
    } else {
        &[
            "It was fine.",
            "OK but the website is slow.",
            "Delivery a bit slow, product as described.",
        ]
    }
}

/// Praise, by theme where it fits.
pub fn praise(theme: Theme, french: bool) -> &'static [&'static str] {
    use Theme::*;
    match (theme, french) {
        (Delivery, true) => &[
            "Livraison rapide et livreur très aimable.",
            "Livré en avance, parfait.",
        ],
        (Delivery, false) => &["Fast delivery, friendly driver."],
        (Staff, true) | (Stock, true) => &[
            "Super accueil en magasin, merci !",
            "Conseiller au top, problème réglé en 5 minutes.",
        ],
        (Staff, false) | (Stock, false) => {
            &["Great service, thanks!", "The staff were really helpful."]
        }
        (Installation, true) => &["Technicien ponctuel et soigneux, merci."],
        (Installation, false) => &["The technician was on time and careful."],
        (_, true) => &["Très satisfait, je recommande.", "Rien à redire, merci !"],
        (_, false) => &[
            "Support solved it in five minutes.",
            "Very happy, I recommend.",
        ],
    }
}
